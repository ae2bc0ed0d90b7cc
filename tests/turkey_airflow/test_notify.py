"""Notifications (turkey_airflow.notify): messages rendered from the event templates, the facts they are
rendered from, channels off without connections, and the run deadline reference. Delivery to a real SMTP
server and webhook is tests/e2e/test_notify.py."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest


def _context(task_id="validate", exception=None, results=None):
    """A task callback's context; ``results``: what each task id returned (XCom)."""
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="turkey_training", run_id="manual__2026-11-28T10:00:00+00:00", task_id=task_id,
                         start_date=datetime(2026, 11, 28, tzinfo=UTC), task=SimpleNamespace(queue="default"),
                         xcom_pull=lambda task_ids: (results or {}).get(task_ids))
    return {"ti": ti, "exception": exception}


def _failed(ctx):
    from turkey_airflow import notify

    return notify.render("run_failed", {**notify.task_facts(ctx), "failure": notify.failure_reason(ctx)})


def test_failed_run_message_names_task_reason_and_link(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException


    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    msg = _failed(_context(exception=AirflowFailException("train.json: rule 'x' broken")))
    assert msg.task_id == "validate" and msg.reason == "train.json: rule 'x' broken"
    assert msg.link == ("https://airflow.example.com/dags/turkey_training/runs/"
                        "manual__2026-11-28T10%3A00%3A00%2B00%3A00")
    body = msg.payload()
    assert body["event"] == "run_failed" and body["severity"] == "error"
    assert "Reason: train.json: rule 'x' broken" in body["text"] and msg.link in body["text"]
    assert msg.details == {"task_log": msg.link + "/tasks/validate"}
    crash = _failed(_context(exception=ValueError("line 1\nbad value")))
    assert crash.reason == "ValueError: bad value"  # one line, the last


def test_never_started_task_says_it_stayed_queued(monkeypatch):

    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT", "120")
    ctx = _context(task_id="train")
    ctx["ti"].start_date, ctx["ti"].task.queue = None, "gpu"
    reason = _failed(ctx).reason
    assert "never started" in reason and "'gpu'" in reason and "task_queued_timeout" in reason


def test_notifications_off_without_connections_are_announced_once(monkeypatch, caplog):
    from turkey_airflow import notify

    async def no_connection(conn_id):
        return None

    monkeypatch.setattr(notify, "_connection", no_connection)
    monkeypatch.setattr(notify, "_said_off", False)
    msg = _failed(_context(exception=RuntimeError("boom")))
    with caplog.at_level(logging.INFO, logger="turkey_airflow.notify"):
        assert asyncio.run(notify.send(msg, {})) == 0
        assert notify.run_to_completion(notify.send(msg, {})) == 0
    off = [r for r in caplog.records if "notifications are off" in r.getMessage()]
    assert len(off) == 1 and "turkey_smtp" in off[0].getMessage() and "turkey_webhook" in off[0].getMessage()


def test_losing_challenger_is_reported_only_when_it_lost():
    from turkey_airflow import notify

    registered = {"version": "v2", "champion_version": "v1", "promote": False, "challenger_val_auc": 0.91,
                  "champion_val_auc": 0.95, "reason": "challenger AUC 0.9100 < champion AUC 0.9500 - 0.02"}
    ctx = _context(task_id="decide", results={"register": registered, "decide": []})
    msg = notify.render("challenger_lost", notify.task_facts(ctx, result_of="register"))
    assert msg.severity == "info" and "challenger v2 lost; champion v1 stays" in msg.title
    assert msg.details == {"version": "v2", "champion_version": "v1", "challenger_val_auc": "0.9100",
                           "champion_val_auc": "0.9500"}
    assert msg.reason == registered["reason"]
    registered["promote"] = True
    assert notify.render("challenger_lost", notify.task_facts(ctx, result_of="register")) is None
    assert notify.render("challenger_lost", notify.task_facts(_context(task_id="decide"), "register")) is None


def test_promoted_message_reads_the_promote_tasks_own_result():
    from turkey_airflow import notify

    promoted = {"version": "v3", "previous": "v2", "reason": "better", "approved_by": None, "submission": "/l.csv"}
    msg = notify.render("promoted", notify.task_facts(_context(task_id="promote", results={"promote": promoted})))
    assert msg.title == "turkey_training: v3 is the new champion" and msg.reason == "better"
    assert msg.details == {"version": "v3", "previous_champion": "v2", "submission": "/l.csv"}  # no approver: left out
    assert "Previous champion: v2" in msg.text() and "<li>Reason: better</li>" in msg.html()
    assert notify.render("promoted", notify.task_facts(_context(task_id="promote"))) is None  # skipped: no result


def test_unknown_event_is_refused():
    from turkey_airflow.notify import TurkeyNotifier

    with pytest.raises(ValueError, match="unknown notification event"):
        TurkeyNotifier("run_exploded")


def test_run_deadline_reads_the_run_param():
    from ml.config import RunConfig
    from turkey_airflow.notify import RunDeadline

    ref, default = RunDeadline(), RunConfig().run_deadline_minutes
    assert ref.minutes_for(None) == default
    assert ref.minutes_for({"run_deadline_minutes": 0.5}) == 0.5
    assert ref.minutes_for({"run_deadline_minutes": None}) == default
    again = RunDeadline.deserialize_reference(RunDeadline(default_minutes=30).serialize_reference())
    assert again == RunDeadline(default_minutes=30)


def test_overdue_message_says_how_late(monkeypatch):
    from turkey_airflow import notify

    sent = []

    async def capture(message, context):
        sent.append(message)
        return 0

    monkeypatch.setattr(notify, "send", capture)
    asyncio.run(notify.run_overdue({"dag_run": {"dag_id": "turkey_training", "dag_run_id": "manual__r",
                                                "state": "running", "queued_at": "2026-11-28T10:00:00Z"},
                                    "deadline": {"deadline_time": "2026-11-28T16:00:00Z"}}))
    (msg,) = sent
    assert msg.event == "run_overdue" and "360 minutes" in msg.title and msg.run_id == "manual__r"
    assert msg.reason == "the run is in state 'running' past its deadline 2026-11-28T16:00:00Z"













def test_a_message_reaches_every_configured_channel_and_a_failing_one_fails_nothing(monkeypatch, caplog):
    """The providers' notifiers deliver to a real SMTP server and webhook on loopback (Airflow connections
    from AIRFLOW_CONN_* variables); a channel that cannot be reached is logged, not raised."""
    from tests.support.receivers import SmtpSink, WebhookSink, airflow_connections
    from turkey_airflow import notify

    promoted = {"version": "v3", "previous": "v2", "reason": "better", "submission": "/l.csv"}
    msg = notify.render("promoted", notify.task_facts(_context(task_id="promote", results={"promote": promoted})))
    with SmtpSink() as smtp, WebhookSink() as hook:
        for name, value in airflow_connections(smtp, hook, to="a@example.com, b@example.com").items():
            monkeypatch.setenv(name, value)
        assert notify.run_to_completion(notify.send(msg, {})) == 2
        (body,) = hook.events("promoted")
        assert body == msg.payload() and body["text"].splitlines()[0] == msg.title
        ((envelope, mail, _),) = smtp.messages
        assert envelope["to"] == ["a@example.com", "b@example.com"]
        assert mail["Subject"] == f"[turkey info] {msg.title}" and "Previous champion: v2" in SmtpSink.body(mail)
    with caplog.at_level(logging.WARNING, logger="turkey_airflow.notify"):  # both receivers are gone now
        assert asyncio.run(notify.send(msg, {})) == 0
    assert len([r for r in caplog.records if "could not send" in r.getMessage()]) == 2
