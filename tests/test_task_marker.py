"""ml.task_marker: what task_body writes is what parse reads, for success and failure."""

import logging

import pytest

from ml import task_marker


def test_task_body_lines_round_trip(caplog):
    caplog.set_level(logging.INFO, logger="ml.task_marker")
    with task_marker.task_body("train"):
        pass
    parsed = [task_marker.parse(r.getMessage()) for r in caplog.records]
    assert [p["event"] for p in parsed] == ["started", "finished"]
    assert parsed[0] == {"task": "train", "event": "started", "seconds": None, "rss_mib": None,
                         "child_rss_mib": None}
    assert parsed[1]["task"] == "train" and parsed[1]["seconds"] >= 0 and parsed[1]["rss_mib"] > 0
    assert parsed[1]["child_rss_mib"] >= 0


def test_a_failing_body_is_logged_as_failed_and_still_raises(caplog):
    caplog.set_level(logging.INFO, logger="ml.task_marker")
    with pytest.raises(RuntimeError), task_marker.task_body("validate"):
        raise RuntimeError("boom")
    assert task_marker.parse(caplog.records[-1].getMessage())["event"] == "failed"


def test_parse_finds_the_marker_inside_an_airflow_log_line_and_ignores_others():
    line = "2026-11-28T07:50:01.123Z [info] turkey task champion_gate: body finished in 1.250 s, peak RSS 640 MiB [ml.task_marker]"
    assert task_marker.parse(line) == {
        "task": "champion_gate", "event": "finished", "seconds": 1.25, "rss_mib": 640.0, "child_rss_mib": None
    }
    with_child = line.replace("640 MiB", "640 MiB, largest child 512 MiB")
    assert task_marker.parse(with_child)["child_rss_mib"] == 512.0
    assert task_marker.parse("::group::Post Execute") is None
