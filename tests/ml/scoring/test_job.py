"""ml.scoring.job and ml.scoring.store in-process, with the shared champion (tests/conftest.py): a new batch is
scored by the champion and published once; a malformed one is quarantined while the others are scored; no
champion means every batch waits; a new champion re-scores the window only; scores are published only while
their model is the champion; a refused skew keeps the scores unpublished; a what-if with any version lists
the flips; the doctor accepts the test file's fresh scores as the submission."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ml.config import ScoringConfig
from ml.demo import generate_batch, make_records, write_json
from ml.registry import Registry
from ml.scoring.job import backfill, score_batches
from ml.scoring.store import TEST_BATCH, ScoreStore
from tests.conftest import copy_tree

pytestmark = pytest.mark.slow


@pytest.fixture
def world(trained, demo_dir, tmp_path):
    """A private copy of the champion's registry, a landing folder with the test file and a batch folder."""
    reg = Registry(copy_tree(trained.registry, tmp_path / "registry"))
    landing = tmp_path / "landing"
    (landing / "batches").mkdir(parents=True)
    shutil.copy(demo_dir / "test.json", landing / "test.json")
    return reg, landing


def _run(reg, landing, tmp_path, run_id="run-1", **config):
    cfg = ScoringConfig(**config)
    return score_batches(reg, cfg, landing / "batches", landing / "test.json", run_id, tmp_path / "work",
                         report_dir=tmp_path / "reports" / run_id)


def _statuses(report) -> dict:
    return {b["batch"]: b["status"] for b in report["batches"]}


def test_a_new_batch_is_scored_by_the_champion_and_published_once(world, tmp_path, trained):
    reg, landing = world
    batch = generate_batch(landing / "batches" / "week-49.json", 120, seed=3)
    first = _run(reg, landing, tmp_path)
    assert first["champion"] == trained.version
    assert _statuses(first) == {"week-49": "published", TEST_BATCH: "published"}
    assert sorted(r["batch"] for r in first["announce"]) == [TEST_BATCH, "week-49"]
    store = ScoreStore(reg)
    latest = store.latest("week-49")
    assert latest["version"] == trained.version and latest["rows"] == 120 and latest["published"]
    rows = list(csv.reader(Path(reg.display(store.path("week-49", "latest.csv"))).read_text().splitlines()))
    assert rows[0] == ["vid_id", "is_turkey"]
    assert [r[0] for r in rows[1:]] == [r["vid_id"] for r in json.loads(Path(batch).read_text())]
    assert Path(reg.submission_path()).read_bytes() == Path(reg.display(store.path(TEST_BATCH, "latest.csv"))).read_bytes()
    assert "excess" in latest["skew"] and not latest["skew_over_threshold"]  # drawn like the training data
    store.mark_announced(first["announce"])
    again = _run(reg, landing, tmp_path)  # a cleared run: nothing to score, nothing to announce
    assert again["batches"] == [] and again["announce"] == []
    retried = _run(reg, landing, tmp_path, run_id="run-1")  # a retry of the same run after the events went out
    assert retried["announce"] == []


def test_a_malformed_batch_is_quarantined_and_the_others_are_scored(world, tmp_path):
    reg, landing = world
    generate_batch(landing / "batches" / "good.json", 60, seed=4)
    records = make_records(40, np.random.default_rng(5), False, set())
    records[7]["audio_embedding"][0][2] = 300
    write_json(records, landing / "batches" / "bad.json")
    report = _run(reg, landing, tmp_path)
    outcome = {b["batch"]: b for b in report["batches"]}
    assert outcome["good"]["status"] == "published" and outcome["bad"]["status"] == "quarantined"
    assert "bad.json" in outcome["bad"]["reason"] and "embedding.value_range" in outcome["bad"]["reason"]
    assert "#7" in outcome["bad"]["reason"] and not (landing / "batches" / "bad.json").exists()
    assert list((landing / "rejected").glob("*bad.json")) and ScoreStore(reg).latest("bad") is None


def test_without_a_champion_every_batch_waits(world, tmp_path):
    reg, landing = world
    generate_batch(landing / "batches" / "early.json", 30, seed=6)
    (Path(reg.root) / "champion.json").unlink()
    for entry in (Path(reg.root) / "audit").iterdir():
        entry.unlink()
    report = _run(reg, landing, tmp_path)
    assert report["champion"] is None and "no champion yet: 2 batch(es) wait" in report["waiting"]
    assert ScoreStore(reg).batches() == []


def test_a_new_champion_rescores_the_window_and_keeps_older_batches(world, tmp_path, trained):
    import os

    reg, landing = world
    for i, name in enumerate(("old", "recent")):
        path = generate_batch(landing / "batches" / f"{name}.json", 40, seed=10 + i)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # "recent" is the newer one
    _run(reg, landing, tmp_path)
    successor = "v29990101T000000-aaaaaaaa"  # the same model under a new name: a new champion
    reg.register(successor, trained.model_dir, reg.manifest(trained.version))
    reg.promote(successor, reason="new champion")
    report = _run(reg, landing, tmp_path, run_id="run-2", rescore_window=1)
    assert {b["batch"]: (b["status"], b["why"]) for b in report["batches"]} == {
        "recent": ("published", "new champion"), TEST_BATCH: ("published", "new champion")}
    store = ScoreStore(reg)
    assert store.latest("recent")["version"] == store.latest(TEST_BATCH)["version"] == successor
    assert store.latest("old")["version"] == trained.version  # outside the window: the champion that scored it
    assert [r["version"] for r in store.history("recent")] == [trained.version, successor]


def test_scores_are_published_only_while_their_model_is_the_champion(world, tmp_path, trained):
    reg, landing = world
    store = ScoreStore(reg)
    csv_path = tmp_path / "s.csv"
    csv_path.write_text("vid_id,is_turkey\na,0.5\n")
    record = store.keep("late", "v-not-champion", csv_path, {"rows": 1, "input_sha256": "x", "scored_at": "t"})
    assert store.publish(record, "run-x") is False and store.latest("late") is None
    kept = store.keep("late", trained.version, csv_path, {"rows": 1, "input_sha256": "x", "scored_at": "t"})
    assert store.publish(kept, "run-x") is True and store.latest("late")["version"] == trained.version


def test_a_refused_skew_keeps_the_scores_unpublished(world, tmp_path):
    reg, landing = world
    records = make_records(80, np.random.default_rng(8), False, set())
    shifted = [{**r, "audio_embedding": [[min(255, v + 20) for v in f] for f in r["audio_embedding"]]} for r in records]
    write_json(shifted, landing / "batches" / "shifted.json")
    report = _run(reg, landing, tmp_path, on_skew="refuse", batches=["shifted"])
    (outcome,) = report["batches"]
    assert outcome["status"] == "refused" and "max_skew" in outcome["reason"]
    store = ScoreStore(reg)
    assert store.latest("shifted") is None and store.history("shifted")[0]["skew_over_threshold"]
    warned = _run(reg, landing, tmp_path, run_id="run-2", batches=["shifted"])  # 'warn': published, flagged
    assert _statuses(warned) == {"shifted": "published"} and store.latest("shifted")["skew_over_threshold"]


def test_a_what_if_with_another_version_lists_the_class_flips(world, tmp_path, trained, capsys):
    from ml import cli

    reg, landing = world
    batch = generate_batch(landing / "batches" / "whatif.json", 50, seed=9)
    other = "v20000101T000000-bbbbbbbb"
    reg.register(other, trained.model_dir, reg.manifest(trained.version))
    out = backfill(reg, "whatif", Path(batch), other, tmp_path / "work")
    assert out["version"] == other and out["champion"] == trained.version and out["flips"] == []  # same weights
    store = ScoreStore(reg)
    assert store.latest("whatif")["version"] == trained.version  # only the champion's scores are published
    assert {r["version"] for r in store.history("whatif")} == {other, trained.version}
    assert cli.main(["scores", "--artifacts", reg.root, "list"]) == 0
    assert "whatif" in capsys.readouterr().out


def test_the_doctor_accepts_the_champions_scores_of_a_newer_test_file(world, tmp_path):
    from ml.registry.doctor import doctor

    reg, landing = world
    write_json(make_records(30, np.random.default_rng(11), False, set()), landing / "test.json")  # a new test file
    _run(reg, landing, tmp_path)
    report = doctor(reg)
    assert report["ok"], report["findings"]
