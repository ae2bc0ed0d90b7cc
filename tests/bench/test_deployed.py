"""bench.deployed without a deployment: the parts add up to the wall, skipped tasks are not booked, and
section 1b (with and without a saved idle-sleep sweep) and 2b's deployed table render."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench import deployed

T0 = 1_800_000_000.0  # trigger time, seconds since the epoch


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat()


def ti(task, state, queued, start, end, pid=None):
    return {"task_id": task, "state": state, "queue": "default", "pid": pid, "start_date": iso(start),
            "end_date": iso(end), "queued_when": iso(queued) if queued is not None else None}


RUN = {"dag_run_id": "manual__x", "state": "success", "start_date": iso(1.0), "end_date": iso(30.0)}
TIS = [ti("validate", "success", 1.5, 2.0, 10.0, 101), ti("train", "success", 11.0, 12.0, 25.0, 102),
       ti("approve_promotion", "skipped", None, 26.0, 26.0), ti("promote", "success", 27.0, 27.5, 29.0, 103)]


def test_the_parts_add_up_to_the_wall_and_skipped_tasks_are_not_booked():
    b = deployed.breakdown(RUN, TIS, T0)
    assert b["wall"] == pytest.approx(30.0) and sum(b["parts"].values()) == pytest.approx(30.0)
    assert "approve_promotion" not in b["tasks"]
    promote = b["tasks"]["promote"]
    assert promote["scheduling"] == pytest.approx(2.0)  # train ended at 25, promote was queued at 27
    assert promote["queue_latency"] == pytest.approx(0.5) and promote["running"] == pytest.approx(1.5)
    assert promote["pid"] == 103 and b["parts"]["running"] == pytest.approx(22.5)


def deployed_run(wall: float) -> dict:
    b = deployed.breakdown(RUN, TIS, T0)
    for t in b["tasks"].values():
        t.update(peak_rss_mib=300.0, child_peak_rss_mib=None)
    b["tasks"]["train"]["peak_rss_mib"] = 960.0
    return {**b, "wall": wall, "epochs_run": 19}


SWEEP = {"meta": {"command": "python -m bench.scheduler_sweep", "date": "2026-01-01 00:00 UTC", "git": "abc",
                  "repeats": 2, "idle_seconds": 20.0},
         "results": [{"value": v, "idle_scheduler_cpu_share": cpu, "walls": [30.0, 32.0], "scheduling": [s, s], "tasks": 9}
                     for v, cpu, s in (("1", 0.019, 6.6), (deployed.SCHEDULER_IDLE_SLEEP_S, 0.068, 1.9))]}


def section(sweep=None) -> dict:
    bare = [{"wall": w, "maxrss_mib": 800.0, "epochs_run": 19} for w in (23.0, 24.0, 22.0)]
    return {"data": {"n_train": 1195, "n_test": 1196, "seed": 0}, "conf": {}, "ready_seconds": 20.0, "bare": bare,
            "deployed": [deployed_run(w) for w in (27.0, 28.0, 35.0)], "scheduler_sweep": sweep,
            "settings": {k: "1" for k in deployed.SETTINGS}}


def test_section_1b_renders_the_walls_per_task_memory_and_the_saved_sweep():
    doc = deployed.render(section(SWEEP))
    assert "| `train` | default | 1.00 | 1.00 | 13.00 | 960 | — |" in doc
    assert "| **gap to the bare script** | 5.00 |" in doc and "scheduler CPU while idle" in doc and "| 6.8% |" in doc
    ratio, wait = deployed.figures(section(SWEEP))
    assert ratio.value == pytest.approx(28 / 23) and ratio.verdict() == "met"
    assert wait.value == 1.9 and wait.command == "python -m bench.scheduler_sweep" and wait.when.endswith("git abc")
    assert "`python -m bench.scheduler_sweep` writes it" in deployed.render(section())
    assert len(deployed.figures(section())) == 1


def test_section_2b_deployed_table_per_scale():
    runs = [{"scale": s, "n_train": n, **deployed_run(w)} for s, n, w in (("10x", 11950, 28.0), ("100x", 119500, 88.0))]
    doc = deployed.render_scales(runs)
    assert "| `train` | 13.00 | 960 | — | 13.00 | 960 | — |" in doc and "| **trigger -> run end (wall)** | 28.00 |" in doc
