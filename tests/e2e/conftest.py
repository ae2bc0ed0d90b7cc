"""End-to-end states through Airflow (``airflow dags test`` on SQLite), built once per session: a champion
published by one training run on landed demo data (what ``make run`` leaves). Every test works on a private
copy (:func:`env`), so the tests are independent of each other and of their order."""

import json

import pytest

from tests.support.airflow_harness import Env
from tests.support.shared import built_once

#: Orchestration tests: tiny data, few epochs; the accuracy floor of a run that learnt something.
FAST = {"epochs": 6, "min_val_accuracy": 0.5, "min_records": 50, "seed": 3, "min_gate_records": 30}


@pytest.fixture(scope="session")
def champion_env(tmp_path_factory):
    """``(env, first)``: an Airflow home, data and artifacts after one successful training run (``first``:
    its result); the DAGs serialized, as after a scheduler start."""
    from ml.demo import generate

    def build(root):
        env = Env(root)
        generate(env.data / "landing", train_size=400, test_size=80, seed=11)
        env.airflow("dags", "reserialize")
        first = env.trigger(FAST)
        assert first["state"] == "success", first["log"][-4000:]
        (root / "first.json").write_text(json.dumps(first))

    root = built_once(tmp_path_factory, "e2e-champion", build)
    return Env(root, migrate=False), json.loads((root / "first.json").read_text())


@pytest.fixture
def env(champion_env, tmp_path):
    """A private copy of :func:`champion_env` (champion included)."""
    return champion_env[0].clone(tmp_path / "env")
