"""Operability (issue 13), the fast parts: version naming by the run's actual start, human decisions on
record, notification messages, the run deadline reference, quiet third-party start-up logs, and
``min_records`` meaning the same in the CLI as in the DAG."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ml.registry import VERSION_FILES, Registry

REPO = Path(__file__).resolve().parent.parent


def _dag_run(run_type: str, run_id: str, start: datetime, logical: datetime | None):
    """A task context's ``dag_run`` (the Task SDK model), as Airflow hands it to a task."""
    from airflow.sdk.api.datamodels._generated import DagRun

    return DagRun(
        dag_id="turkey_training", run_id=run_id, logical_date=logical, data_interval_start=logical,
        data_interval_end=logical, run_after=logical or start, start_date=start, end_date=None,
        run_type=run_type, state="running", consumed_asset_events=[], partition_key=None,
    )


def _register(reg: Registry, version: str, run_id: str, tmp_path: Path) -> None:
    cand = tmp_path / f"cand-{version}"
    cand.mkdir()
    for f in VERSION_FILES:
        (cand / f).write_text("{}" if f.endswith(".json") else "x")
    reg.register(version, cand, {"run_id": run_id, "metrics": {"val_accuracy": 0.9, "val_auc": 0.95},
                                 "gate": {"decision": "promote", "reason": "no champion yet"}})


# ------------------------------------------------------------------------------------- version naming
def test_scheduled_run_is_named_after_its_actual_start_not_its_logical_date(tmp_path):
    from turkey_airflow.tasks import run_version

    reg = Registry(tmp_path / "reg")
    logical = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # the weekly slot, picked up days later
    started = datetime(2026, 11, 28, 9, 15, 2, tzinfo=UTC)
    scheduled = _dag_run("scheduled", "scheduled__2026-11-23T03:00:00+00:00", started, logical)
    version = run_version(reg, scheduled)
    assert version.startswith("v20261128T091502-"), version
    # deterministic per run: the same run gives the same name, another run another one
    assert run_version(reg, scheduled) == version
    other = _dag_run("scheduled", "scheduled__2026-11-30T03:00:00+00:00", started, logical + timedelta(days=7))
    assert run_version(reg, other) != version


def test_manual_and_asset_triggered_runs_sort_by_start(tmp_path):
    from turkey_airflow.tasks import run_version

    reg = Registry(tmp_path / "reg")
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    asset = _dag_run("asset_triggered", "asset_triggered__2026-11-28T10:00:00+00:00", t0, None)
    manual = _dag_run("manual", "manual__2026-11-28T10:05:00+00:00", t0 + timedelta(minutes=5), t0)
    scheduled = _dag_run("scheduled", "scheduled__2026-11-23T03:00:00+00:00", t0 + timedelta(minutes=9),
                         datetime(2026, 11, 23, 3, tzinfo=UTC))
    names = [run_version(reg, r) for r in (asset, manual, scheduled)]
    assert names == sorted(names)  # creation order == name order, whatever the logical dates say


def test_a_cleared_run_keeps_the_version_it_registered(tmp_path):
    """Clearing a finished run's tasks gives the run a new start_date; its version must not change."""
    from turkey_airflow.tasks import run_version

    reg = Registry(tmp_path / "reg")
    first = _dag_run("manual", "manual__x", datetime(2026, 11, 28, 10, 0, tzinfo=UTC), None)
    version = run_version(reg, first)
    _register(reg, version, "manual__x", tmp_path)
    cleared = first.model_copy(update={"start_date": datetime(2026, 11, 29, 8, 0, tzinfo=UTC), "clear_number": 1})
    assert run_version(reg, cleared) == version


# ------------------------------------------------------------------------------------- decisions
def test_decisions_are_on_record_and_listed(tmp_path, capsys):
    from ml.cli import main
    from turkey_airflow.approval import decision_record, describe_decision

    reg = Registry(tmp_path / "reg")
    _register(reg, "v20261128T100000-aaaaaaaa", "manual__a", tmp_path)
    _register(reg, "v20261128T110000-bbbbbbbb", "manual__b", tmp_path)
    at = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    approved = decision_record({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "alice"},
                                "responded_at": at, "params_input": {"comment": "better on both metrics"}})
    assert approved == {"decision": "approved", "by": "alice", "user_id": "7", "at": at.isoformat(),
                        "comment": "better on both metrics"}
    rejected = decision_record({"chosen_options": ["Reject"], "responded_by_user": {"id": "8", "name": "bob"},
                                "responded_at": at, "params_input": {}})
    assert rejected["decision"] == "rejected" and rejected["comment"] is None
    assert describe_decision(rejected, "v2").startswith("rejected by bob at 2026-11-28T10:30:00+00:00")

    reg.promote("v20261128T100000-aaaaaaaa", reason="no champion yet", approval=approved, run_id="manual__a")
    reg.record_rejection("v20261128T110000-bbbbbbbb", user="bob", approval=rejected, run_id="manual__b")
    assert reg.champion()["approval"]["by"] == "alice"
    entries = {e["action"]: e for e in reg.audit()}
    assert entries["promote"]["approval"]["comment"] == "better on both metrics"
    assert entries["rejected"]["version"] == "v20261128T110000-bbbbbbbb" and entries["rejected"]["user"] == "bob"
    rows = {r["version"]: r for r in reg.list()}
    assert rows["v20261128T110000-bbbbbbbb"]["gate"] == "rejected"  # no longer reads as "promote"
    assert rows["v20261128T100000-aaaaaaaa"]["gate"] == "promote"
    assert rows["v20261128T100000-aaaaaaaa"]["decision"]["by"] == "alice"

    assert main(["models", "--artifacts", str(tmp_path / "reg"), "list"]) == 0
    out = capsys.readouterr().out
    assert "approved by alice" in out and "rejected by bob" in out
    assert main(["models", "--artifacts", str(tmp_path / "reg"), "show", "v20261128T110000-bbbbbbbb"]) == 0
    assert "decision: rejected by bob" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- notifications
def _context(task_id="validate", exception=None):
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="turkey_training", run_id="manual__2026-11-28T10:00:00+00:00", task_id=task_id,
                         start_date=datetime(2026, 11, 28, tzinfo=UTC), task=SimpleNamespace(queue="default"),
                         xcom_pull=lambda task_ids: None)
    return {"ti": ti, "exception": exception}


def test_failed_run_message_names_task_reason_and_link(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from turkey_airflow import notify

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    msg = notify.build_message("run_failed", _context(exception=AirflowFailException("train.json: rule 'x' broken")))
    assert msg.task_id == "validate" and msg.reason == "train.json: rule 'x' broken"
    assert msg.link == ("https://airflow.example.com/dags/turkey_training/runs/"
                        "manual__2026-11-28T10%3A00%3A00%2B00%3A00")
    body = msg.payload()
    assert body["event"] == "run_failed" and body["severity"] == "error"
    assert "Reason: train.json: rule 'x' broken" in body["text"] and msg.link in body["text"]
    crash = notify.build_message("run_failed", _context(exception=ValueError("line 1\nbad value")))
    assert crash.reason == "ValueError: bad value"  # one line, the last


def test_never_started_task_says_it_stayed_queued(monkeypatch):
    from turkey_airflow import notify

    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT", "120")
    ctx = _context(task_id="train")
    ctx["ti"].start_date, ctx["ti"].task.queue = None, "gpu"
    reason = notify.build_message("run_failed", ctx).reason
    assert "never started" in reason and "'gpu'" in reason and "task_queued_timeout" in reason


def test_notifications_off_without_connections_are_announced_once(monkeypatch, caplog):
    from turkey_airflow import notify

    monkeypatch.setattr(notify, "_connection", lambda conn_id: None)
    monkeypatch.setattr(notify, "_said_off", False)
    msg = notify.build_message("run_failed", _context(exception=RuntimeError("boom")))
    with caplog.at_level(logging.INFO, logger="turkey_airflow.notify"):
        assert notify.send(msg, {}) == 0
        assert notify.send(msg, {}) == 0
    off = [r for r in caplog.records if "notifications are off" in r.getMessage()]
    assert len(off) == 1 and "turkey_smtp" in off[0].getMessage() and "turkey_webhook" in off[0].getMessage()


def test_losing_challenger_is_reported_only_when_it_lost():
    from turkey_airflow import notify

    registered = {"version": "v2", "champion_version": "v1", "promote": False, "challenger_val_auc": 0.91,
                  "champion_val_auc": 0.95, "reason": "challenger AUC 0.9100 < champion AUC 0.9500 - 0.02"}
    ctx = _context(task_id="decide")
    ctx["ti"].xcom_pull = lambda task_ids: registered if task_ids == "register" else {"val_accuracy": 0.88}
    msg = notify.build_message("challenger_lost", ctx)
    assert msg.severity == "info" and "challenger v2 lost; champion v1 stays" in msg.title
    assert msg.details["champion"] == {"val_auc": 0.95} and msg.details["challenger"]["val_auc"] == 0.91
    registered["promote"] = True
    assert notify.build_message("challenger_lost", ctx) is None


def test_unknown_event_is_refused():
    from turkey_airflow.notify import TurkeyNotifier

    with pytest.raises(ValueError, match="unknown notification event"):
        TurkeyNotifier("run_exploded")


def test_run_deadline_reads_the_run_param():
    from turkey_airflow.notify import DEFAULT_RUN_DEADLINE_MINUTES, RunDeadline

    ref = RunDeadline()
    assert ref.minutes_for(None) == DEFAULT_RUN_DEADLINE_MINUTES
    assert ref.minutes_for({"run_deadline_minutes": 0.5}) == 0.5
    assert ref.minutes_for({"run_deadline_minutes": None}) == DEFAULT_RUN_DEADLINE_MINUTES
    again = RunDeadline.deserialize_reference(RunDeadline(default_minutes=30).serialize_reference())
    assert again == RunDeadline(default_minutes=30)


def test_overdue_message_says_how_late():
    from turkey_airflow.notify import overdue_message

    msg = overdue_message({"dag_run": {"dag_id": "turkey_training", "dag_run_id": "manual__r", "state": "running",
                                       "queued_at": "2026-11-28T10:00:00Z"},
                           "deadline": {"deadline_time": "2026-11-28T16:00:00Z"}})
    assert msg.event == "run_overdue" and "360 minutes" in msg.title and msg.run_id == "manual__r"


def test_dag_wires_notifiers_deadline_and_approval():
    from airflow.dag_processing.dagbag import DagBag

    from turkey_airflow.approval import PromotionApproval
    from turkey_airflow.notify import RunDeadline, TurkeyNotifier

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["turkey_training"]
    assert dag.deadline
    alerts = dag.deadline if isinstance(dag.deadline, list | tuple) else [dag.deadline]
    assert len(alerts) == 1 and isinstance(alerts[0].reference, RunDeadline)
    assert dag.params["run_deadline_minutes"] == 360
    for task in dag.tasks:  # every task notifies when it fails for good
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(isinstance(c, TurkeyNotifier) and c.event == "run_failed" for c in callbacks), task.task_id
    approval = dag.task_dict["approve_promotion"]
    assert isinstance(approval, PromotionApproval)
    assert [n.event for n in approval.notifiers] == ["approval"]


# ------------------------------------------------------------------------------------- quiet logs
GX_PROBE = r"""
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
if sys.argv[1] == "raw":
    import great_expectations  # what happened before: GX imported with INFO logging
else:
    from ml.validation import validate_file
    out = validate_file(sys.argv[2], "train", min_records=1)
    assert not out.ok
"""


def test_validation_does_not_flood_the_log_with_gx_info(tmp_path):
    bad = tmp_path / "train.json"
    bad.write_text(json.dumps([{"vid_id": "a", "start_time_seconds_youtube_clip": 0,
                                "end_time_seconds_youtube_clip": 10, "audio_embedding": [[300] * 128],
                                "is_turkey": 1}]))
    env = {**os.environ, "PYTHONPATH": str(REPO), "GX_ANALYTICS_ENABLED": "false"}

    def closures(mode):
        out = subprocess.run([sys.executable, "-c", GX_PROBE, mode, str(bad)], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return sum("because it is a closure" in line for line in out.stdout.splitlines())

    assert closures("raw") > 50  # the flood this guards against is real
    assert closures("validate") == 0


def test_tensorflow_start_up_lines_are_logged_at_info_not_on_stderr():
    probe = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, "
             "format='%(levelname)s %(name)s %(message)s'); from ml.tflog import import_tensorflow; "
             "import_tensorflow()")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip() == "", out.stderr
    assert all(line.startswith("INFO ml.tflog") for line in out.stdout.splitlines() if line.strip())


# ------------------------------------------------------------------------------------- min_records
def test_min_records_applies_to_training_files_only(tmp_path, capsys):
    from ml.cli import main
    from ml.demo import generate

    paths = generate(tmp_path, train_size=40, test_size=40, seed=5)
    assert main(["validate", str(paths["test"]), "--split", "test"]) == 0
    assert "valid test file, 40 records" in capsys.readouterr().out
    assert main(["validate", str(paths["train"]), "--split", "train"]) == 1  # 40 < 100 training records
    assert "records.min_count" in capsys.readouterr().err
