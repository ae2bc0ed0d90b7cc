"""bench.deployed's arithmetic without a deployment: the parts add up to the wall, skipped tasks are not
booked, a task without a body line is an error, body lines are read from the task log files."""

from __future__ import annotations

import json

import pytest

from bench import deployed
from ml.task_marker import ENDED

T0 = 1_800_000_000.0  # trigger time, seconds since the epoch


def iso(offset: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(T0 + offset, UTC).isoformat()


def ti(task, state, queued, start, end):
    return {"task_id": task, "state": state, "queue": "default", "hostname": "w",
            "queued_when": iso(queued) if queued is not None else None,
            "start_date": iso(start), "end_date": iso(end)}


RUN = {"dag_run_id": "manual__x", "state": "success", "start_date": iso(1.0), "end_date": iso(30.0)}
TIS = [
    ti("validate", "success", 1.5, 2.0, 10.0),
    ti("train", "success", 11.0, 12.0, 25.0),
    ti("approve_promotion", "skipped", None, 26.0, 26.0),
    ti("promote", "success", 27.0, 27.5, 29.0),
]
BODIES = {"validate": {"seconds": 6.0, "rss_mib": 300.0}, "train": {"seconds": 11.0, "rss_mib": 800.0},
          "promote": {"seconds": 0.5, "rss_mib": 200.0}}


def test_parts_add_up_to_the_wall_and_skipped_tasks_are_not_booked():
    b = deployed.breakdown(RUN, TIS, BODIES, T0)
    assert b["wall"] == pytest.approx(30.0)
    assert sum(b["parts"].values()) == pytest.approx(b["wall"])
    assert "approve_promotion" not in b["tasks"]
    promote = b["tasks"]["promote"]
    assert promote["scheduling"] == pytest.approx(2.0)  # train ended at 25, promote queued at 27
    assert promote["queue_latency"] == pytest.approx(0.5)
    assert promote["outside_body"] == pytest.approx(1.0)
    assert b["parts"]["body"] == pytest.approx(17.5)


def test_a_successful_task_without_a_body_line_is_an_error():
    with pytest.raises(RuntimeError, match="no task-body line.*train"):
        deployed.breakdown(RUN, TIS, {k: v for k, v in BODIES.items() if k != "train"}, T0)


def test_body_lines_and_epochs_come_from_the_task_log_files(tmp_path):
    folder = tmp_path / "run_id=manual__x" / "task_id=train"
    folder.mkdir(parents=True)
    lines = [{"event": "trained 7 epoch(s) in 3.2s"},
             {"event": ENDED.format(task="train", outcome="finished", seconds=11.25, rss_mib=812, child_rss_mib=0)}]
    (folder / "attempt=1.log").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    bodies, epochs = deployed.task_bodies(tmp_path / "run_id=manual__x")
    assert bodies == {"train": {"seconds": 11.25, "rss_mib": 812.0, "child_rss_mib": 0.0}} and epochs == 7
