"""bench.overhead: a ``dags test`` run read back from its metadata DB, its parts, and sections 1 and 2b rendered."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest

from bench import overhead
from bench.procwatch import Seen

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def _iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).replace(tzinfo=None).isoformat(sep=" ")


def make_db(path):
    """A metadata DB with the columns the bench reads: a run from 2 s to 12 s, validate 3-6, train 6.5-11."""
    con = sqlite3.connect(path)
    con.execute("create table dag_run (dag_id, state, start_date, end_date)")
    con.execute("create table task_instance (dag_id, task_id, state, start_date, end_date, pid)")
    con.execute("create table xcom (dag_id, task_id, key, value)")
    con.execute("insert into dag_run values ('turkey_training', 'success', ?, ?)", (_iso(2), _iso(12)))
    con.executemany("insert into task_instance values ('turkey_training', ?, ?, ?, ?, ?)", [
        ("train", "success", _iso(6.5), _iso(11), 77), ("validate", "success", _iso(3), _iso(6), 77),
        ("approve_promotion", "skipped", _iso(11), _iso(11), None)])
    con.executemany("insert into xcom values ('turkey_training', ?, ?, ?)", [
        ("validate", "return_value", json.dumps({"n_train": 3})), ("validate", "_link", '"/x"'),
        ("train", "return_value", json.dumps({"epochs_run": 4, "train_seconds": 3.5})),
        ("evaluate", "return_value", json.dumps({"val_accuracy": 0.9, "val_auc": 0.95}))])
    con.commit()
    con.close()
    return path


def test_read_run_and_the_breakdown_add_up_to_the_wall(tmp_path):
    run = overhead.read_run(make_db(tmp_path / "airflow.db"))
    assert run["state"] == "success" and [t["task_id"] for t in run["tis"]] == ["validate", "train"]  # skipped: out
    assert run["xcom"]["validate"] == (2, len(json.dumps({"n_train": 3})) + 4)
    seen = {77: Seen(1, T0, T0 + 12, [(T0 + 1, 300.0), (T0 + 5, 500.0), (T0 + 10, 900.0)])}
    b = overhead.breakdown(run, T0, 13.0, seen)
    assert sum(b["parts"].values()) == pytest.approx(13.0)
    assert b["parts"]["startup"] == pytest.approx(2.0) and b["parts"]["between"] == pytest.approx(0.5)
    assert b["tasks"]["train"]["running"] == pytest.approx(4.5) and b["tasks"]["validate"]["wait"] == pytest.approx(1.0)
    assert b["tasks"]["validate"]["peak_rss_mib"] == 500.0 and b["tasks"]["train"]["peak_rss_mib"] == 900.0
    assert (b["epochs_run"], b["fit"], b["val_auc"]) == (4, 3.5, 0.95)


def dag_result(wall: float, n_train: int = 1195, scale: str = "1x") -> dict:
    """What run_dag_test returns, made up."""
    tasks = {t: {"running": 1.0, "wait": 0.1, "xcom": (1, 100), "peak_rss_mib": 800.0, "child_peak_rss_mib": None}
             for t in ("validate", "train")}
    parts = {"startup": 2.0, "before_first": 1.0, "running": 2.0, "between": 0.1, "after_last": 0.1, "exit": wall - 5.2}
    return {"scale": scale, "n_train": n_train, "wall": wall, "maxrss_mib": 1000.0, "parts": parts, "tasks": tasks,
            "epochs_run": 19, "fit": 14.0, "val_accuracy": 0.96, "val_auc": 0.97}


def bare_result(wall: float) -> dict:
    times = {"import_ml": 1.0, "read_json": 0.2, "split_pad": 0.0, "import_tf": 3.0, "fit": 14.0,
             "build_and_fit": 14.1, "score_and_write": 0.7}
    return {"wall": wall, "maxrss_mib": 800.0, "times": times, "in_process_seconds": wall - 1.4, "epochs_run": 19,
            "val_accuracy": 0.96, "val_auc": 0.97}


def test_section_1_renders_walls_parts_and_the_ratio_against_its_target():
    r = {"data": {"n_train": 1195, "n_test": 1196, "seed": 0}, "conf": {}, "migrate_seconds": 3.7,
         "bare": [bare_result(20.0), bare_result(22.0)], "dag": [dag_result(30.0), dag_result(34.0)]}
    doc = overhead.render_overhead(r)
    assert "| `validate` | 1.00 | 0.10 | 1 | 100 |" in doc and "| **total wall** | 32.00 |" in doc
    (ratio,) = overhead.figures_overhead(r)
    assert ratio.value == pytest.approx(32 / 21) and ratio.verdict() == "**NOT met**"


def test_section_2b_renders_each_scale_and_the_growth_per_record():
    dep_task = {"running": 1.0, "peak_rss_mib": 1900.0, "child_peak_rss_mib": 1200.0}
    r = {"conf": overhead.SCALE_CONF, "runs": [dag_result(27.0, 11950, "10x"), dag_result(72.0, 119500, "100x")],
         "deployed": [{"scale": "100x", "n_train": 119500, "wall": 88.0, "tasks": {"train": dep_task}}]}
    doc = overhead.render_scale_dag(r)
    assert "10x running (s)" in doc and "| `train` | 1.00 | 800 | 1.00 | 800 |" in doc and "100x largest child (MiB)" in doc
    growth, wall, peak = overhead.figures_scale_dag(r)
    assert growth.value == pytest.approx((72 / 119500) / (27 / 11950)) and growth.verdict() == "met"
    assert wall.value == 72.0 and peak.value == 1900.0 and peak.verdict() == "met"
    failed = overhead.render_scale_dag({**r, "deployed": None, "deployed_error": "Setup: no PostgreSQL"})
    assert "failed: `Setup: no PostgreSQL`" in failed
