"""bench.scoring: the skew table on tiny inputs, the make-score log breakdown on a synthetic log, the cached
batch, the sizes of quick and full runs, and sections 6 and 6b rendered (also through run_bench). No timing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import run_bench, scoring

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _line(offset: float, message: str, level: str = "info") -> str:
    stamp = datetime.fromtimestamp(T0 + offset, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} [{level:<9}] {message} [some.logger] loc=x.py:1"


LOG = "\n".join([
    _line(2.0, "Performing upgrade to the metadata database"),
    _line(3.0, "Database migration done!"),
    _line(3.1, "Could not import graphviz.", "warning"),
    "Run `pip install graphviz` to attempt to install it.",  # a continuation line: no timestamp
    _line(4.5, "Created dag run."),
    _line(9.5, "Task started"),
    _line(9.6, "champion v1; 2 of 2 batch(es) to score: week-49 (new), kaggle-test (new)"),
    _line(13.6, "batch week-49 (300 records) scored by v1; skew: mean PSI 0.0600 vs 0.0400", "warning"),
    _line(14.6, "batch kaggle-test (1196 records) scored by v1; skew: mean PSI 0.0100"),
    _line(14.8, "DagRun Finished: dag_id=turkey_scoring"),
])


def test_the_breakdown_follows_the_landmarks_and_adds_up_to_the_wall():
    parts = scoring.score_breakdown(LOG, T0, 15.0)
    assert [p["part"] for p in parts] == [
        "process start -> first log line", "-> migration done", "-> DAG run created", "-> task instance running",
        "-> body's first line (`champion ...`)", "-> batch week-49 (300 records) scored",
        "-> batch kaggle-test (1196 records) scored", "-> DAG run finished", "-> process exit"]
    assert [round(p["seconds"], 3) for p in parts] == [2.0, 1.0, 1.5, 5.0, 0.1, 4.0, 1.0, 0.2, 0.2]
    assert sum(p["seconds"] for p in parts) == pytest.approx(15.0)
    assert "model load" in parts[5]["what"] and "model load" not in parts[6]["what"]


def test_a_missing_landmark_folds_into_the_next_part():
    log = "\n".join(x for x in LOG.splitlines() if "Task started" not in x and "Created dag run" not in x)
    parts = scoring.score_breakdown(log, T0, 15.0)
    assert "-> task instance running" not in [p["part"] for p in parts]
    assert parts[2]["part"].startswith("-> body's first line") and parts[2]["seconds"] == pytest.approx(6.6)
    assert sum(p["seconds"] for p in parts) == pytest.approx(15.0)
    assert scoring.score_breakdown("", T0, 3.0) == [{"part": "-> process exit", "seconds": 3.0,
                                                     "what": parts[-1]["what"]}]


def test_the_skew_table_on_tiny_inputs():
    r = scoring.collect_skew(sizes=(40,), seeds=(1, 2), n_train=120)
    assert len(r["runs"]) == 2 * 5 and r["max_skew"] == pytest.approx(0.1)
    rows = {x["case"]: x for x in scoring.skew_rows(r)}
    assert list(rows) == ["unshifted", "+3", "+10", "x0.9", "temporal"] and rows["+10"]["of"] == 2
    assert rows["unshifted"]["min"] <= rows["unshifted"]["mean"] <= rows["unshifted"]["max"]
    assert rows["+10"]["min"] > rows["unshifted"]["max"]
    low, high = scoring.figures_skew(r)
    assert low.value == rows["unshifted"]["max"] and high.value == rows["+10"]["min"] and high.op == ">"
    text = scoring.render_skew(r)
    assert "| case | clips | mean excess |" in text and "| +10 | 40 |" in text and "**0.1**" in text
    assert "Above `max_skew` in every batch of every size: +10, x0.9; in none: unshifted" in text


def test_the_batch_is_generated_once(tmp_path, monkeypatch):
    monkeypatch.setattr(scoring, "OUT", tmp_path)
    path = scoring.ensure_batch(12, 3)
    records = json.loads(Path(path).read_text())
    assert len(records) == 12 and "is_turkey" not in records[0]
    assert path == str(tmp_path / "data" / "batch-12-3" / "batch.json")
    mtime = Path(path).stat().st_mtime_ns
    assert scoring.ensure_batch(12, 3) == path and Path(path).stat().st_mtime_ns == mtime


def test_quick_runs_are_tiny_and_full_runs_are_kaggle_size_and_100x():
    quick = scoring.settings(run_bench.make_config(True))
    full = scoring.settings(run_bench.make_config(False))
    assert quick["data"] == (300, 300) and quick["big"][1] < 20_000 and quick["conf"]["epochs"] == 2
    assert full["data"] == (1195, 1196) and full["big"] == ("100x", 119_600) and full["conf"] == {}
    assert full["repeats"] >= 5 and full["train_args"] == []


def _proc(wall: float, **extra) -> dict:
    return {"process_wall": wall, "peak_rss_mib": 300.0, **extra}


def result(**over) -> dict:
    """A made-up section 6 result."""
    body = [_proc(w, times={"imports": 0.2, "score_batches": 3.0}) for w in (4.0, 5.0, 6.0)]
    timers = {"imports": 4.0, "load": 0.2, "read": 0.1, "predict": 0.5, "write": 0.0}
    bare = [_proc(w, times=timers) for w in (5.0, 6.0)]
    parts = scoring.score_breakdown(LOG, T0, 15.0)
    r = {"data": {"n_train": 1195, "n_test": 1196, "seed": 0}, "repeats": 3,
         "registry": {"train_wall": 30.0, "forward": "NumPy"},
         "body_vs_bare": {"body": body, "bare": bare, "max_abs_diff": 1e-6, "same_ids": True},
         "make": {"conf": {}, "batch_size": 1196, "run": {"wall": 40.0, "maxrss_mib": 1000.0},
                  "score": {"wall": 15.0, "maxrss_mib": 400.0}, "parts": parts,
                  "published": ["scores of kaggle-test 1196 rows by v1: /x/latest.csv"]},
         "big": {"label": "100x", "n": 119_600, "file_mib": 520.0, "streamed": True, "process_wall": 80.0,
                 "times": {"score_batches": 75.0}, "records_per_s": 1495.0, "records_per_s_scoring": 1594.7,
                 "peak_rss_mib": 900.0}}
    return {**r, **over}


def test_section_6_renders_each_measurement_and_its_figures():
    r = result()
    text = scoring.render(r)
    assert "Ratio of the medians: **0.91x**" in text and "| body (`score_batches`) | 4.0, 5.0, 6.0 | 5.00 |" in text
    assert "Ratio: **0.38x**" in text and "| **total wall** | 15.00 |" in text
    assert "| -> batch week-49 (300 records) scored | 4.00 |" in text and "`scores of kaggle-test" in text
    assert "| 100x: 119,600 clips | 520.00 | streaming | 80.00 |" in text
    ratio, make, rss = scoring.figures(r)
    assert ratio.value == pytest.approx(5.0 / 5.5) and ratio.verdict() == "met"
    assert make.value == pytest.approx(15 / 40) and make.verdict() == "**NOT met**"
    assert rss.value == pytest.approx(900 / 1024) and rss.unit == "GiB" and rss.verdict() == "met"


def test_a_failed_measurement_shows_and_its_figure_is_not_measured():
    r = result(make={"error": "Traceback ...\nRuntimeError: make score exited with 1"})
    text = scoring.render(r)
    assert "**This measurement failed**: `RuntimeError: make score exited with 1`" in text
    assert "Ratio of the medians" in text and "streaming" in text
    assert [f.verdict() for f in scoring.figures(r)] == ["met", "not measured", "met"]


def test_both_sections_are_registered_and_render_through_run_bench():
    meta = {"command": "python -m bench.run_bench", "date": "2026-01-01 00:00 UTC", "git": "abc",
            "machine": {"loadavg": [1.0, 1.0, 1.0]}}
    assert (run_bench.SECTIONS["scoring"][0], run_bench.SECTIONS["skew"][0]) == ("6", "6b")
    block, rows = run_bench.render_section("scoring", {"data": result(), "seconds": 300}, meta)
    assert block.startswith("## 6. Batch scoring") and len(rows) == 3 and all(r.startswith("| §6 |") for r in rows)
    skew = scoring.collect_skew(sizes=(40,), seeds=(1,), n_train=120)
    block, rows = run_bench.render_section("skew", {"data": skew, "seconds": 1}, meta)
    assert block.startswith("## 6b. Training-serving skew") and len(rows) == 2 and "| +10 | 40 |" in block
