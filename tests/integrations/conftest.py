"""The integrations suite (``make test-mlflow``, in ``.venv-mlflow``): the MLflow mirror against a real
tracking server started here on 127.0.0.1 (SQLite backend, local artifact root; scripts/mlflow_server.py),
and the OpenLineage events Airflow's provider emits. Without the mlflow extra these tests do not collect:
they fail, never skip."""

from __future__ import annotations

import shutil

import mlflow  # noqa: F401  - the extra must be installed (make install-mlflow)
import pytest
from mlflow.tracking import MlflowClient

from scripts.mlflow_server import start
from scripts.procs import free_port, stop_all
from tests.conftest import copy_tree


class Server:
    """A tracking server of this session's: ``uri``, ``folder``; :meth:`stop` and :meth:`start` (the same
    port and data again) for the down-then-up tests."""

    def __init__(self, folder):
        self.folder, self.port, self.proc = folder, free_port(), None
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self):
        self.proc = start(self.port, self.folder)
        return self

    def stop(self):
        stop_all([self.proc])
        self.proc = None


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One tracking server for the session (each test mirrors into experiments of its own)."""
    s = Server(tmp_path_factory.mktemp("mlflow")).start()
    yield s
    if s.proc is not None:
        s.stop()


@pytest.fixture
def mirror_env(server, monkeypatch, request):
    """MLFLOW_TRACKING_URI at the session's server, with an experiment and model name private to the test."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    monkeypatch.setenv("TURKEY_MLFLOW_EXPERIMENT", name)
    monkeypatch.setenv("TURKEY_MLFLOW_MODEL_NAME", f"{name}-model")
    monkeypatch.setenv("TURKEY_MLFLOW_TIMEOUT_S", "240")
    return {"uri": server.uri, "experiment": name, "model": f"{name}-model", "client": MlflowClient(server.uri)}


@pytest.fixture
def two_versions(trained, tmp_path):
    """A private registry: the session's trained champion and a second version (the same model registered
    again under another name and run), champion still the first."""
    from ml.fsutil import read_json
    from ml.registry import Registry

    root = copy_tree(trained.registry, tmp_path / "registry")
    reg = Registry(root)
    second = "v99990101T000000-second"
    manifest = {**read_json(trained.model_dir / "manifest.json"), "run_id": "second-run", "dag_id": "turkey_training"}
    work = tmp_path / "cand"
    shutil.copytree(trained.model_dir, work)
    reg.register(second, work, manifest)
    return reg, trained.version, second
