"""End to end through Airflow (`airflow dags test`, SQLite): publish, champion/challenger, bad data, and the
data-triggered loop (ingest -> training -> consumer).

One module fixture builds a champion once (the `make run` equivalent); every test works on its own copy
of that environment (metadata DB, data, artifacts), so the tests are independent of each other's order.
"""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from ml.config import safe_name
from ml.demo import generate, make_records, write_json
from ml.registry import Registry
from tests.airflow_harness import Env

pytestmark = pytest.mark.slow

FAST = {"epochs": 8, "min_val_accuracy": 0.6, "min_records": 50, "seed": 3, "min_gate_records": 30}
MODEL_EVENTS = ("turkey_champion_model", "turkey_submission")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """An environment with demo data and a champion from one training run (what `make run` leaves)."""
    e = Env(tmp_path_factory.mktemp("e2e") / "base")
    generate(e.data / "landing", train_size=400, test_size=150, seed=11)
    e.airflow("dags", "reserialize")  # the DAGs and their asset schedules are known, as after a scheduler start
    first = e.trigger(FAST)
    assert first["state"] == "success", first["log"][-4000:]
    return e, first


@pytest.fixture
def env(base, tmp_path):
    """A private copy of the base environment (champion included)."""
    return base[0].clone(tmp_path / "env")


def _submission_ok(path, test_json):
    ids = [r["vid_id"] for r in json.loads(test_json.read_text())]
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["vid_id", "is_turkey"]
    assert [r[0] for r in rows[1:]] == ids  # one row per test record, input order
    assert all(0.0 <= float(r[1]) <= 1.0 for r in rows[1:])


def _grow(train_json: Path, n_new: int, seed: int) -> None:
    """Add ``n_new`` new labelled records and reorder the file."""
    records = json.loads(train_json.read_text())
    records += make_records(n_new, np.random.default_rng(seed), True, {r["vid_id"] for r in records})
    random.Random(seed).shuffle(records)
    write_json(records, train_json)


def _record_ids(reg: Registry, version: str) -> dict:
    return json.loads((Path(reg.version_dir(version)) / "record_ids.json").read_text())


def _model_events(res) -> list:
    return [(n, x["version"]) for n, x in res["events"] if n in MODEL_EVENTS]


def test_first_run_publishes_a_champion(base):
    env, res = base
    assert res["tasks"]["promote"] == "success" and res["tasks"]["approve_promotion"] == "skipped"
    reg = Registry(env.artifacts)
    info = reg.describe("champion")
    assert info["manifest"]["gate"]["reason"] == "no champion yet"
    for f in ("model.keras", "metrics.json", "history.json", "curves.png", "manifest.json", "submission.csv",
              "record_ids.json"):
        assert (Path(reg.version_dir(info["version"])) / f).is_file()
    ids = _record_ids(reg, info["version"])
    assert len(ids["train"]) == info["metrics"]["n_train"] and len(ids["validation"]) == info["metrics"]["n_val"]
    assert info["manifest"]["record_ids"]["n_train_ids"] == len(ids["train"])
    _submission_ok(reg.submission_path(), env.data / "landing" / "test.json")
    names = [n for n, _ in res["events"]]
    assert names.count("turkey_champion_model") == 1 and names.count("turkey_submission") == 1
    extra = dict(res["events"])["turkey_submission"]
    assert extra["version"] == info["version"] and extra["path"].endswith("latest.csv")
    assert set(extra["metrics"]) == {"val_accuracy", "val_auc"}
    m = info["metrics"]
    assert {"val_accuracy", "val_auc", "baseline_logreg", "evaluated_on"} <= set(m)
    assert "epoch 1/8" in res["log"]  # training progress in the task log
    run_dir = env.artifacts / "runs" / safe_name(info["manifest"]["run_id"])
    assert res["tasks"]["cleanup"] == "success"
    assert not list(run_dir.rglob("*.npz")) and not (run_dir / "candidate").exists()  # intermediates removed
    assert (run_dir / "validation").is_dir()  # the validation report stays


def test_losing_challenger_is_kept_but_not_promoted(env):
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    before = Path(reg.submission_path()).read_bytes()
    res = env.trigger({**FAST, "recipe": "seed", "epochs": 1, "min_val_accuracy": 0.0})
    assert res["state"] == "success", res["log"][-4000:]
    assert res["tasks"]["promote"] == "skipped"
    assert reg.champion_version() == champion
    assert Path(reg.submission_path()).read_bytes() == before
    assert len(reg.versions()) == 2
    loser = [r for r in reg.list() if not r["champion"]][0]
    assert loser["gate"] == "keep_champion" and not loser["ever_promoted"]
    gate = reg.manifest(loser["version"])["gate"]
    assert gate["comparison"]["ci_low"] < -gate["tolerance"]
    assert "champion gate: keep_champion (challenger - champion AUC" in res["log"]
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
    records = json.loads((landing / "train.json").read_text())
    records[5]["audio_embedding"][0][3] = 300
    (landing / "train.json").write_text(json.dumps(records))
    res = env.trigger(FAST)
    assert res["state"] == "failed"
    assert res["tasks"]["validate"] == "failed"
    assert all(s in ("upstream_failed", "None", "skipped") for t, s in res["tasks"].items() if t != "validate")
    assert "#5" in res["log"] and "train.json" in res["log"]
    assert not (landing / "train.json").exists()
    rejected = list((env.data / "rejected").rglob("*train.json"))
    assert rejected, "the bad file must be moved to rejected/"
    assert (reg.champion(), reg.versions()) == state


def test_gate_never_scores_the_champion_on_its_training_records(env):
    """Issue 9: the champion trained on records that are validation records of the next run (it used a
    smaller validation share); then the data grows, is reordered, and the seed changes. The gate must leave
    out exactly the champion's training records, and a challenger truly better on the rest is promoted."""
    reg = Registry(env.artifacts)
    weak = env.trigger({**FAST, "recipe": "seed", "epochs": 1, "min_val_accuracy": 0.0, "val_fraction": 0.15,
                        "force_promote": True})
    assert weak["state"] == "success" and weak["tasks"]["promote"] == "success", weak["log"][-4000:]
    champion = reg.champion_version()
    champion_trained = set(_record_ids(reg, champion)["train"])
    _grow(env.data / "landing" / "train.json", 200, seed=5)
    res = env.trigger({**FAST, "seed": 7})
    assert res["state"] == "success", res["log"][-4000:]
    version = reg.versions()[-1]
    challenger = _record_ids(reg, version)
    gate = reg.manifest(version)["gate"]
    cmp = gate["comparison"]
    assert champion_trained & set(challenger["gate"]) == set()  # never scored on what it trained on
    overlap = champion_trained & set(challenger["validation"])
    assert overlap and cmp["n_excluded_champion_trained"] == len(overlap)
    assert set(challenger["gate"]) == set(challenger["validation"]) - champion_trained
    assert cmp["n"] == len(challenger["gate"]) and cmp["method"] == "delong" and cmp["confidence"] == 0.95
    assert cmp["ci_low"] > 0 and gate["decision"] == "promote" and reg.champion_version() == version
    assert f"n={cmp['n']} records neither model trained on" in res["log"]


def test_data_triggered_loop_trains_and_announces_only_new_data(env):
    """Issue 16: after a training run (`make run`), ingest announces nothing; a retrain on the same inputs
    registers a version but keeps the champion and emits nothing; new data -> one event, one queued
    training run, one promotion, one consumer run."""
    env.airflow("dags", "unpause", "turkey_training")  # asset events queue runs only for unpaused DAGs
    env.airflow("dags", "unpause", "turkey_consumer")
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    ingest = env.trigger(dag_id="turkey_ingest")
    assert ingest["tasks"]["check_landing"] == "skipped"
    assert "already trained on by run" in ingest["log"]
    assert not [e for e in ingest["events"] if e[0] == "turkey_incoming_data"] and not ingest["queued"]
    n_model_events = len(_model_events(ingest))

    again = env.trigger(FAST)  # e.g. the cron slot after unpausing: same inputs, same recipe
    assert again["state"] == "success" and again["tasks"]["promote"] == "skipped", again["log"][-4000:]
    assert reg.champion_version() == champion and len(reg.versions()) == 2
    gate = reg.manifest(reg.versions()[-1])["gate"]
    assert gate["decision"] == "keep_champion" and gate["same_inputs_as_champion"]
    assert "same inputs and recipe as champion" in gate["reason"]
    assert len(_model_events(again)) == n_model_events and not again["queued"]  # no new asset events

    _grow(env.data / "landing" / "train.json", 400, seed=8)  # twice the data: a truly better challenger
    ingest = env.trigger(dag_id="turkey_ingest")
    assert ingest["tasks"]["check_landing"] == "success"
    assert [e[0] for e in ingest["events"]].count("turkey_incoming_data") == 1
    assert ingest["queued"] == [["turkey_incoming_data", "turkey_training"]]  # one asset-triggered run queued
    # No scheduler runs in this test: run the queued training run as the scheduler would.
    trained = env.trigger(FAST)
    assert trained["state"] == "success" and trained["tasks"]["promote"] == "success", trained["log"][-4000:]
    new_events = _model_events(trained)[n_model_events:]
    assert sorted(new_events) == [(m, reg.champion_version()) for m in sorted(MODEL_EVENTS)]
    assert reg.champion_version() != champion
    assert sorted(trained["queued"]) == [["turkey_incoming_data", "turkey_training"],
                                         ["turkey_submission", "turkey_consumer"]]
    consumer = env.trigger(dag_id="turkey_consumer")
    assert consumer["state"] == "success"
    assert [r[0] for r in consumer["all_runs"]].count("turkey_consumer") == 1
    again = env.trigger(dag_id="turkey_ingest")  # trained on now: nothing more to announce
    assert again["tasks"]["check_landing"] == "skipped"
    assert [e[0] for e in again["events"]].count("turkey_incoming_data") == 1
