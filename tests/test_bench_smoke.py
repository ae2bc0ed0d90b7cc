"""Smoke tests of the bench helpers (no timings asserted): table writer, result parsing, chunked demo
writer, the DAG-log breakdown parser, and one cheap stage run in a subprocess."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest

from bench import common
from bench.dag_log import MissingMarker, body_markers, dag_breakdown
from bench.render import render
from ml import task_marker


def test_md_table_formats_and_escapes():
    t = common.md_table(["name", "value"], [["a|b", 1234.5678], ["c", None], ["d", 7]])
    lines = t.splitlines()
    assert lines[0] == "| name | value |"
    assert lines[1] == "| :--- | ---: |"
    assert lines[2] == "| a\\|b | 1,234.57 |"
    assert lines[3] == "| c | — |"
    assert lines[4] == "| d | 7 |"


def test_stats():
    assert common.median([3, 1, 2]) == 2
    assert common.median([4, 1, 2, 3]) == 2.5
    m, sd = common.mean_sd([1.0, 2.0, 3.0])
    assert m == 2.0 and sd == pytest.approx(1.0, abs=1e-4)
    assert common.mean_sd([5.0]) == (5.0, 0.0)


def test_parse_result_takes_last_line():
    out = f"noise\n{common.RESULT_TAG}{json.dumps({'a': 1})}\nmore\n{common.RESULT_TAG}{json.dumps({'a': 2})}\n"
    assert common.parse_result(out) == {"a": 2}
    with pytest.raises(RuntimeError):
        common.parse_result("nothing here")


def test_run_proc_reports_rc_wall_and_rss():
    p = common.run_proc([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], timeout=60)
    assert p.rc == 3 and "hi" in p.output and p.wall > 0 and p.maxrss_mib > 1
    with pytest.raises(RuntimeError):
        p.check()
    p = common.run_proc([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert p.timed_out and p.rc != 0


def test_chunked_writer_matches_demo_format(tmp_path):
    from ml.data import read_records

    path = common.write_records_chunked(tmp_path / "t.json", 9, seed=1, split_code=0, with_labels=True, workers=1)
    old, common.CHUNK = common.CHUNK, 4
    try:
        again = common.write_records_chunked(tmp_path / "u.json", 9, 1, 0, True, workers=2)
        parts = common.write_records_chunked(tmp_path / "v.json", 9, 1, 0, True, workers=1)
    finally:
        common.CHUNK = old
    assert Path(again).read_text() == Path(parts).read_text()  # same file whatever the worker count
    rec = read_records(path)
    assert len(rec) == 9 and (rec.labels >= 0).all() and len(set(rec.ids)) == 9
    text = Path(path).read_text()
    assert text.startswith('[{"vid_id":') and text.endswith("]\n") and "},\n{" in text


def _fake_db(path):
    con = sqlite3.connect(path)
    con.execute("create table task_instance (dag_id, task_id, state, duration)")
    con.execute("create table xcom (dag_id, task_id, value)")
    con.executemany(
        "insert into task_instance values ('turkey_training', ?, 'success', ?)", [("validate", 2.0), ("train", 3.0)]
    )
    con.executemany("insert into xcom values ('turkey_training', ?, ?)", [("validate", "x" * 10), ("validate", "y")])
    con.commit()
    con.close()


def _marker_lines(z: str, task: str, start: str, seconds: float, rss: float = 300) -> list[str]:
    """The two body-marker lines ml.task_marker writes for one task, as structlog prints them under dags test."""
    started = task_marker.STARTED.format(task=task)
    ended = task_marker.ENDED.format(task=task, outcome="finished", seconds=seconds, rss_mib=rss, child_rss_mib=0)
    end_s = f"{float(start) + seconds:09.6f}"
    return [f"{z}{start}Z [info] {started} [ml.task_marker]", f"{z}{end_s}Z [info] {ended} [ml.task_marker]"]


def _dag_log(z: str, with_train_marker: bool = True) -> str:
    train_markers = _marker_lines(z, "train", "07.600000", 3.4, rss=812) if with_train_marker else []
    return "\n".join(
        [
            f"{z}01.000000Z [info] DAG bundles loaded",
            f"{z}02.000000Z [info] [DAG TEST] starting task_id=validate map_index=-1",
            _marker_lines(z, "validate", "05.000000", 2.0)[0],
            f"{z}06.000000Z [info] validated /x/train.json (train): OK in 0.8s; report r",
            f"{z}06.500000Z [info] validated /x/test.json (test): OK in 0.2s; report r",
            _marker_lines(z, "validate", "05.000000", 2.0)[1],
            f"{z}07.250000Z [info] [DAG TEST] end task task_id=validate map_index=-1",
            f"{z}07.500000Z [info] [DAG TEST] starting task_id=train map_index=-1",
            *train_markers[:1],
            f"{z}08.600000Z [info] training on CPU with recipe {{}} [ml.pipeline]",
            f"{z}10.600000Z [info] trained 3 epoch(s) in 2.0s [ml.pipeline]",
            *train_markers[1:],
            f"{z}11.100000Z [info] [DAG TEST] end task task_id=train map_index=-1",
            f"{z}11.200000Z [info] DagRun Finished: dag_id=turkey_training, state=success",
        ]
    )


def test_dag_breakdown_phases_from_task_markers(tmp_path):
    _fake_db(tmp_path / "a.db")
    z = "2026-01-01T00:00:"
    from datetime import datetime

    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    b = dag_breakdown(_dag_log(z), t0, 13.0, tmp_path / "a.db")
    assert b["ok"]
    assert b["startup"] == pytest.approx(1.0, abs=1e-4)
    assert b["parse_and_create_run"] == pytest.approx(1.0, abs=1e-4)
    v = b["phases"]["validate"]
    assert (v["pre"], v["body"], v["post"], v["gap"]) == pytest.approx((3.0, 2.0, 0.25, 0.25), abs=1e-4)
    assert v["outcome"] == "finished" and v["rss_mib"] == 300
    t = b["phases"]["train"]
    assert (t["pre"], t["body"], t["post"]) == pytest.approx((0.1, 3.4, 0.1), abs=1e-4)
    assert t["rss_mib"] == 812
    assert b["teardown"] == pytest.approx(1.8, abs=1e-4)
    assert b["ml"]["validate_train"] == 0.8 and b["ml"]["fit"] == 2.0 and b["ml"]["epochs_run"] == 3
    assert b["ml"]["train_before_fit"] == pytest.approx(1.0, abs=1e-4)
    assert b["ml"]["train_after_fit"] == pytest.approx(0.4, abs=1e-4)
    assert b["xcom"]["validate"] == {"rows": 2, "bytes": 11}


def test_dag_breakdown_fails_loudly_without_a_body_marker(tmp_path):
    """A task that ran but logged no marker is an error, never a body silently booked as Airflow time."""
    _fake_db(tmp_path / "a.db")
    with pytest.raises(MissingMarker, match="'train'"):
        dag_breakdown(_dag_log("2026-01-01T00:00:", with_train_marker=False), 0.0, 13.0, tmp_path / "a.db")


def test_task_marker_lines_written_by_task_body_are_read_back(caplog):
    """The lines the real context manager logs are the ones the bench parses (no copy of the format)."""
    import logging

    with caplog.at_level(logging.INFO, logger="ml.task_marker"), task_marker.task_body("evaluate"):
        pass
    lines = [f"2026-01-01T00:00:0{i}.000000Z [info] {r.getMessage()}" for i, r in enumerate(caplog.records)]
    body = body_markers([(float(i), ln) for i, ln in enumerate(lines)], "evaluate")
    assert body["start"] == 0.0 and body["outcome"] == "finished" and body["rss_mib"] > 1


def test_render_records_failures_and_skipped_sections():
    meta = {
        "command": "`x`",
        "date": "today",
        "machine": common.machine_info(),
        "packages": {"numpy": np.__version__},
        "git": "abc",
        "tag": "quick",
        "total_seconds": 1.0,
    }
    results = {
        "scale": {"error": "Traceback...\nBoom: it broke", "seconds": 0.1},
        "gpu": {"data": {"gpu_present": False}, "seconds": 0},
    }
    doc = render(meta, results, ["scale", "gpu"])
    assert doc.startswith("# Benchmarks\n") and "Generated by `x`" in doc
    assert "Boom: it broke" in doc and "Not run in this invocation." in doc and "None measured" in doc


def test_pad_stage_in_a_subprocess(tmp_path):
    """One cheap stage end to end: a real subprocess, result line, per-process peak RSS."""
    from ml.data import save_arrays

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 11, 40).astype(np.int32)
    frames = rng.integers(0, 256, (int(lengths.sum()), 128)).astype(np.uint8)
    ids = np.array([f"id{i}" for i in range(40)], dtype=object)
    save_arrays(tmp_path / "train.npz", ids=ids, frames=frames, lengths=lengths, labels=np.arange(40) % 2)
    save_arrays(tmp_path / "test.npz", ids=ids, frames=frames, lengths=lengths)
    p = common.run_proc(
        [sys.executable, "-m", "bench.stages", "pad", "--args", json.dumps({"work": str(tmp_path)})],
        env=common.child_env(),
        timeout=300,
    ).check()
    r = p.result()
    from ml.prepare import split_roles

    tr, va = split_roles(ids, np.arange(40) % 2, 0.25)  # the pipeline's own split (by vid_id hash)
    assert r["records"] == 80 and r["n_train"] == len(tr) and r["n_val"] == len(va) == 40 - len(tr)
    assert 5 <= len(va) <= 15 and r["peak_rss_mib"] > 10
    assert (tmp_path / "split.npz").is_file() and (tmp_path / "test_padded.npz").is_file()


def test_splice_inserts_a_new_sub_section_and_keeps_the_reliability_block():
    from bench.render import splice_sections

    meta = {"command": "`x`", "date": "now", "git": "abc", "machine": {"loadavg": [1.0]}}
    old = (
        "# Benchmarks\n\n## 2. Scale\n\nold two\n\n## 3. Quality\n\nold three\n\n## 4. GPU\n\nold four\n\n"
        "<!-- reliability:start (x) -->\n## 5. Reliability\n\nfaults\n<!-- reliability:end -->\n"
    )
    new = "# Benchmarks\n\n## 2b. Whole DAG\n\nnew two-b\n\n## 4. GPU\n\nnew four\n"
    out = splice_sections(old, new, ["scale_dag", "gpu"], meta)
    assert out.index("old two") < out.index("new two-b") < out.index("## 3. Quality")
    assert "old four" not in out and out.index("new four") < out.index("<!-- reliability:start")
    assert out.count("## 5. Reliability") == 1 and out.rstrip().endswith("<!-- reliability:end -->")
