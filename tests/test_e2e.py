"""End to end through Airflow (`airflow dags test`, SQLite): publish, champion/challenger, bad data."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from ml.config import safe_name
from ml.demo import generate
from ml.registry import Registry
from tests.airflow_harness import Env

pytestmark = pytest.mark.slow

FAST = {"epochs": 8, "min_val_accuracy": 0.6, "min_records": 50, "seed": 3}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("e2e"))
    generate(e.data / "landing", train_size=400, test_size=150, seed=11)
    return e


def _submission_ok(path, test_json):
    ids = [r["vid_id"] for r in json.loads(test_json.read_text())]
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["vid_id", "is_turkey"]
    assert [r[0] for r in rows[1:]] == ids  # one row per test record, input order
    assert all(0.0 <= float(r[1]) <= 1.0 for r in rows[1:])


def test_first_run_publishes_a_champion(env):
    res = env.trigger(FAST)
    assert res["state"] == "success", res["log"][-4000:]
    assert res["tasks"]["promote"] == "success" and res["tasks"]["approve_promotion"] == "skipped"
    reg = Registry(env.artifacts)
    info = reg.describe("champion")
    assert info["manifest"]["gate"]["reason"] == "no champion yet"
    for f in ("model.keras", "metrics.json", "history.json", "curves.png", "manifest.json", "submission.csv"):
        assert (Path(reg.version_dir(info["version"])) / f).is_file()
    _submission_ok(reg.submission_path(), env.data / "landing" / "test.json")
    names = [n for n, _ in res["events"]]
    assert names.count("turkey_champion_model") == 1 and names.count("turkey_submission") == 1
    extra = dict(res["events"])["turkey_submission"]
    assert extra["version"] == info["version"] and extra["path"].endswith("latest.csv")
    assert set(extra["metrics"]) == {"val_accuracy", "val_auc"}
    m = info["metrics"]
    assert {"val_accuracy", "val_auc", "baseline_logreg"} <= set(m)
    assert "epoch 1/8" in res["log"]  # training progress in the task log
    run_dir = env.artifacts / "runs" / safe_name(info["manifest"]["run_id"])
    assert res["tasks"]["cleanup"] == "success"
    assert not list(run_dir.rglob("*.npz")) and not (run_dir / "candidate").exists()  # intermediates removed
    assert (run_dir / "validation").is_dir()  # the validation report stays


def test_losing_challenger_is_kept_but_not_promoted(env):
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    before = Path(reg.submission_path()).read_bytes()
    res = env.trigger({**FAST, "recipe": "seed", "epochs": 1, "auc_tolerance": 0.0, "min_val_accuracy": 0.0})
    assert res["state"] == "success", res["log"][-4000:]
    assert res["tasks"]["promote"] == "skipped"
    assert reg.champion_version() == champion
    assert Path(reg.submission_path()).read_bytes() == before
    assert len(reg.versions()) == 2
    loser = [r for r in reg.list() if not r["champion"]][0]
    assert loser["gate"] == "keep_champion" and not loser["ever_promoted"]
    assert [n for n, _ in res["events"]].count("turkey_submission") == 1  # no new event


def test_accuracy_gate_failure_publishes_nothing(env):
    reg = Registry(env.artifacts)
    versions = reg.versions()
    res = env.trigger({**FAST, "epochs": 1, "min_val_accuracy": 0.999})
    assert res["state"] == "failed"
    assert res["tasks"]["accuracy_gate"] == "failed" and res["tasks"]["cleanup"] == "upstream_failed"
    assert "below the threshold min_val_accuracy=0.9990" in res["log"]
    assert reg.versions() == versions


def test_bad_train_file_fails_at_validate_and_is_rejected(env):
    reg = Registry(env.artifacts)
    state = (reg.champion(), reg.versions())
    landing = env.data / "landing"
    good = landing.parent / "good-train.json"
    shutil.copy(landing / "train.json", good)
    records = json.loads(good.read_text())
    records[5]["audio_embedding"][0][3] = 300
    (landing / "train.json").write_text(json.dumps(records))
    try:
        res = env.trigger(FAST)
        assert res["state"] == "failed"
        assert res["tasks"]["validate"] == "failed"
        assert all(s in ("upstream_failed", "None", "skipped") for t, s in res["tasks"].items() if t != "validate")
        assert "#5" in res["log"] and "train.json" in res["log"]
        assert not (landing / "train.json").exists()
        rejected = list((env.data / "rejected").rglob("*train.json"))
        assert rejected, "the bad file must be moved to rejected/"
        assert (reg.champion(), reg.versions()) == state
    finally:
        shutil.copy(good, landing / "train.json")
