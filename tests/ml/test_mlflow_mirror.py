"""The MLflow mirror where MLflow is not installed (the default install): off without a tracking URI, never
raising, the lag recorded once; the default install carries no MLflow or OpenLineage package. The mirror
against a real server: tests/integrations (make test-mlflow)."""

import json
import logging
import tomllib
from pathlib import Path

import pytest

from ml import mlflow_mirror
from ml.errors import TurkeyError
from tests.support import REPO
from tests.support.candidates import seeded_registry


def test_the_default_install_has_no_mlflow_or_openlineage_package():
    locked = {line.split("==")[0].strip().lower() for line in (REPO / "requirements.lock").read_text().splitlines()
              if line and line[0].isalnum()}
    assert not {n for n in locked if n.startswith(("mlflow", "openlineage", "apache-airflow-providers-openlineage"))}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if "mlflow" in d or "openlineage" in d]
    assert project["optional-dependencies"]["mlflow"] == ["mlflow==3.17.2"]  # as requirements-mlflow.lock pins
    assert "mlflow==3.17.2" in (REPO / "requirements-mlflow.lock").read_text().splitlines()


def test_off_without_a_tracking_uri(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reg = seeded_registry(tmp_path)
    assert mlflow_mirror.catch_up(reg) == {"status": "off"}
    with pytest.raises(TurkeyError, match="MLFLOW_TRACKING_URI is not set"):
        mlflow_mirror.sync(reg)
    assert not Path(reg.display(mlflow_mirror.state_path(reg))).exists()


def test_a_failing_mirror_lags_without_raising_and_warns_once(tmp_path, monkeypatch, caplog):
    """The child process fails (here: mlflow cannot be imported there); the promotion's caller sees a lag."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setattr(mlflow_mirror, "installed", lambda: True)  # this process believes it; the child knows
    reg = seeded_registry(tmp_path)
    with caplog.at_level(logging.INFO, logger="ml.mlflow_mirror"):
        first = mlflow_mirror.catch_up(reg, timeout_s=300)
        second = mlflow_mirror.catch_up(reg, timeout_s=300)
    assert first["status"] == second["status"] == "lagging"
    assert first["since"] == second["since"] and first["reason"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "behind the registry" in r.message]
    assert len(warnings) == 1  # logged once; the second time at info
    state = json.loads(Path(reg.display(mlflow_mirror.state_path(reg))).read_text())
    assert state["status"] == "lagging" and state["reason"] == first["reason"]


def test_set_but_not_installed_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setattr(mlflow_mirror, "installed", lambda: False)
    reg = seeded_registry(tmp_path)
    assert mlflow_mirror.catch_up(reg) == {"status": "not installed"}
    with pytest.raises(TurkeyError, match="mlflow is not installed"):
        mlflow_mirror.sync(reg)


def test_params_are_flattened_and_described():
    assert mlflow_mirror._flat("", {"a": 1, "recipe": {"epochs": 60, "lr": {"min": 1e-6}}}, {}) == {
        "a": 1, "recipe.epochs": 60, "recipe.lr.min": 1e-6}
    line = mlflow_mirror.describe({"runs_logged": 1, "model_versions_created": 1, "scoring_runs_logged": 0,
                                   "replaced": 0, "champion": {"version": "v1", "model_version": "3"}})
    assert "1 run(s)" in line and "alias champion -> version 3 (v1)" in line
