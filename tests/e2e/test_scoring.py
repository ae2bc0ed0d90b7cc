"""turkey_scoring end to end through Airflow (issue 21): a champion, then new batches -> the ingest check
queues a scoring run (not a training run) -> the batch is scored by the champion, one turkey_scores event per
batch, a malformed batch quarantined while the other is scored, the champion unchanged and no train task
run; a run again scores nothing. (A promotion re-scoring the window: tests/e2e/test_training.py.) Before
any champion, batches wait and are scored after the first promotion."""

import json
import shutil

import numpy as np
import pytest

from ml.demo import generate_batch, make_records, write_json
from ml.registry import Registry
from ml.scoring.store import TEST_BATCH, ScoreStore

pytestmark = pytest.mark.slow


def _scores_events(res) -> list[dict]:
    return [x for n, x in res["events"] if n == "turkey_scores"]


def test_new_batches_are_scored_by_the_champion_and_nothing_trains(env):
    reg, store = Registry(env.artifacts), None
    champion = reg.champion_version()
    batches = env.data / "landing" / "batches"
    generate_batch(batches / "week-49.json", 150, seed=21)
    bad = make_records(30, np.random.default_rng(22), False, set())
    bad[4]["audio_embedding"][1][0] = 999
    write_json(bad, batches / "broken.json")
    unpause = [["dags", "unpause", "turkey_scoring"], ["dags", "unpause", "turkey_training"]]
    ingest = env.trigger(dag_id="turkey_ingest", before=unpause)
    assert ingest["tasks"] == {"check_landing": "skipped", "check_batches": "success"}  # no training data
    assert ["turkey_incoming_batches", "turkey_scoring"] in ingest["queued"]
    assert ["turkey_incoming_data", "turkey_training"] not in ingest["queued"]
    training_runs = [r for r in ingest["all_runs"] if r[0] == "turkey_training"]

    scored = env.trigger(dag_id="turkey_scoring")  # the queued run, as the scheduler would start it
    assert scored["state"] == "success" and scored["tasks"] == {"score_batches": "success"}, scored["log"][-3000:]
    assert [r for r in scored["all_runs"] if r[0] == "turkey_training"] == training_runs  # nothing trained
    assert reg.champion_version() == champion and len(reg.versions()) == 1
    events = _scores_events(scored)
    assert sorted(e["batch"] for e in events) == [TEST_BATCH, "week-49"]  # one event per scored batch
    week = next(e for e in events if e["batch"] == "week-49")
    assert week["version"] == champion and week["rows"] == 150 and week["path"].endswith(f"{champion}.csv")
    store = ScoreStore(reg)
    assert store.latest("week-49")["version"] == champion and store.latest("broken") is None
    assert not (batches / "broken.json").exists() and list((env.data / "landing" / "rejected").glob("*broken.json"))
    assert "embedding.value_range" in scored["log"] and "#4" in scored["log"]

    again = env.trigger(dag_id="turkey_scoring")  # e.g. a cleared run: every batch already scored
    assert again["tasks"] == {"score_batches": "skipped"} and "nothing to score" in again["log"]
    assert len(_scores_events(again)) == len(events)


def test_batches_wait_for_the_first_champion(env, tmp_path):
    """No champion: the run skips with the reason and publishes nothing; once a champion is promoted (here:
    the registry after the first promotion), the waiting batch is scored."""
    registry = tmp_path / "registry-after-first-promotion"
    shutil.copytree(env.artifacts, registry, symlinks=True)
    shutil.rmtree(env.artifacts)  # before any training run: no champion
    generate_batch(env.data / "landing" / "batches" / "early.json", 40, seed=23)
    waiting = env.trigger(dag_id="turkey_scoring")
    assert waiting["tasks"] == {"score_batches": "skipped"}
    assert "no champion yet: 2 batch(es) wait for the first promotion" in waiting["log"]
    assert not (env.artifacts / "scores").exists()
    shutil.copytree(registry, env.artifacts, symlinks=True)
    scored = env.trigger(dag_id="turkey_scoring")
    assert scored["tasks"] == {"score_batches": "success"}, scored["log"][-3000:]
    latest = json.loads((env.artifacts / "scores" / "early" / "latest.json").read_text())
    assert latest["version"] == Registry(env.artifacts).champion_version() and latest["rows"] == 40
