"""turkey_training end to end through Airflow: the first run publishes a champion and its assets, a retrain on
the same inputs keeps it and announces nothing, and new data goes ingest -> training -> promotion ->
consumer, each asset event once. One run per path (a failing run: tests/e2e/test_notify.py); the gates'
arithmetic, the split, the task bodies and the registry's transaction are tested below the DAG
(tests/ml, tests/turkey_airflow)."""

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from ml.demo import make_records, write_json
from ml.registry import Registry
from ml.registry.views import describe, version_rows
from ml.settings import safe_name
from tests.e2e.conftest import FAST

pytestmark = pytest.mark.slow

MODEL_EVENTS = ("turkey_champion_model", "turkey_submission")


def _model_events(res) -> list:
    return [(n, x["version"]) for n, x in res["events"] if n in MODEL_EVENTS]


def _grow(train_json: Path, n_new: int, seed: int) -> None:
    """Add ``n_new`` new labelled records and reorder the file."""
    records = json.loads(train_json.read_text())
    records += make_records(n_new, np.random.default_rng(seed), True, {r["vid_id"] for r in records})
    random.Random(seed).shuffle(records)
    write_json(records, train_json)


def test_first_run_publishes_a_champion_and_its_assets(champion_env):
    env, res = champion_env
    assert res["tasks"]["promote"] == "success" and res["tasks"]["approve_promotion"] == "skipped"
    reg = Registry(env.artifacts)
    info = describe(reg, "champion")
    assert info["manifest"]["gate"]["reason"] == "no champion yet"
    folder = Path(reg.version_dir(info["version"]))
    for f in ("model.keras", "metrics.json", "history.json", "curves.png", "manifest.json", "submission.csv",
              "record_ids.json"):
        assert (folder / f).is_file()
    ids = json.loads((folder / "record_ids.json").read_text())
    assert len(ids["train"]) == info["metrics"]["n_train"] and len(ids["validation"]) == info["metrics"]["n_val"]
    test_ids = [r["vid_id"] for r in json.loads((env.data / "landing" / "test.json").read_text())]
    rows = list(csv.reader(Path(reg.submission_path()).read_text().splitlines()))
    assert rows[0] == ["vid_id", "is_turkey"] and [r[0] for r in rows[1:]] == test_ids  # input order
    assert all(0.0 <= float(r[1]) <= 1.0 for r in rows[1:])
    names = [n for n, _ in res["events"]]
    assert names.count("turkey_champion_model") == 1 and names.count("turkey_submission") == 1
    extra = dict(res["events"])["turkey_submission"]
    assert extra["version"] == info["version"] and extra["path"] == reg.submission_path()
    assert extra["metrics"] == {k: info["metrics"][k] for k in ("val_accuracy", "val_auc")}
    assert "epoch 1/6" in res["log"]  # training progress in the task log
    run_dir = env.artifacts / "runs" / safe_name(info["manifest"]["run_id"])
    assert res["tasks"]["cleanup"] == "success"
    assert not list(run_dir.rglob("*.npz")) and not (run_dir / "candidate").exists()  # intermediates removed
    assert (run_dir / "validation").is_dir()  # the validation report stays


def test_a_retrain_on_the_same_inputs_keeps_the_champion_and_announces_nothing(env):
    """Issue 16: after a training run, ingest announces nothing; a retrain on the champion's exact inputs and
    recipe (e.g. the weekly slot) registers a version but keeps the champion, and no asset event is sent."""
    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    before = Path(reg.submission_path()).read_bytes()
    ingest = env.trigger(dag_id="turkey_ingest")
    assert ingest["tasks"]["check_landing"] == "skipped" and "already trained on by run" in ingest["log"]
    assert not [e for e in ingest["events"] if e[0] == "turkey_incoming_data"] and not ingest["queued"]
    n_events = len(_model_events(ingest))

    again = env.trigger(FAST)
    assert again["state"] == "success" and again["tasks"]["promote"] == "skipped", again["log"][-4000:]
    assert reg.champion_version() == champion and len(reg.versions()) == 2
    assert Path(reg.submission_path()).read_bytes() == before
    kept = [r for r in version_rows(reg) if not r["champion"]][0]
    assert kept["gate"] == "keep_champion" and not kept["ever_promoted"]
    gate = reg.manifest(kept["version"])["gate"]
    assert gate["same_inputs_as_champion"] and "same inputs and recipe as champion" in gate["reason"]
    assert "champion gate: keep_champion (same inputs and recipe" in again["log"]
    assert len(_model_events(again)) == n_events and not again["queued"]  # no new asset events


def test_new_data_is_announced_once_trains_promotes_and_reaches_the_consumer(env):
    """New labelled data -> one turkey_incoming_data event -> one queued training run -> promotion -> one
    event per model asset -> one consumer run and one scoring run that re-scores the scored batches with the
    new champion; the next ingest run skips (trained on)."""
    from ml.demo import generate_batch

    reg = Registry(env.artifacts)
    champion = reg.champion_version()
    generate_batch(env.data / "landing" / "batches" / "week-48.json", 60, seed=31)
    unpause = [["dags", "unpause", d] for d in ("turkey_training", "turkey_consumer", "turkey_scoring")]
    first_scores = env.trigger(dag_id="turkey_scoring", before=unpause)  # the champion scores the batch
    assert first_scores["tasks"] == {"score_batches": "success"}, first_scores["log"][-3000:]
    _grow(env.data / "landing" / "train.json", 400, seed=8)  # twice the data: a truly better challenger
    ingest = env.trigger(dag_id="turkey_ingest")  # asset events queue runs of unpaused DAGs only
    n_events = len(_model_events(ingest))
    assert ingest["tasks"]["check_landing"] == "success"
    assert [e[0] for e in ingest["events"]].count("turkey_incoming_data") == 1
    assert ingest["queued"] == [["turkey_incoming_data", "turkey_training"]]  # one asset-triggered run queued
    # No scheduler runs in this test: run the queued training run as the scheduler would.
    trained = env.trigger(FAST)
    assert trained["state"] == "success" and trained["tasks"]["promote"] == "success", trained["log"][-4000:]
    assert reg.champion_version() != champion
    assert sorted(_model_events(trained)[n_events:]) == [(m, reg.champion_version()) for m in sorted(MODEL_EVENTS)]
    assert sorted(trained["queued"]) == [["turkey_champion_model", "turkey_scoring"],
                                         ["turkey_incoming_data", "turkey_training"],
                                         ["turkey_submission", "turkey_consumer"]]
    rescored = env.trigger(dag_id="turkey_scoring")  # the window, re-scored by the new champion
    fresh = [(x["batch"], x["version"]) for n, x in rescored["events"] if n == "turkey_scores"]
    assert set(fresh[-2:]) == {("kaggle-test", reg.champion_version()), ("week-48", reg.champion_version())}, \
        rescored["log"][-3000:]
    assert (env.artifacts / "submissions" / "latest.csv").read_bytes() == \
        (env.artifacts / "scores" / "kaggle-test" / "latest.csv").read_bytes()
    consumer = env.trigger(dag_id="turkey_consumer")
    assert consumer["state"] == "success"
    assert [r[0] for r in consumer["all_runs"]].count("turkey_consumer") == 1
    assert [e[0] for e in consumer["events"]].count("turkey_incoming_data") == 1  # announced once
    # trained on now, so the next ingest run skips (as after any training run: see the test above)
    assert reg.manifest(reg.champion_version())["inputs"]["train_sha256"] in json.dumps(
        json.loads((env.artifacts / "state" / "ingest.json").read_text())["trained"])
