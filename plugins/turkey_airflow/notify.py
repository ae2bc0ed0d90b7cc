"""Notifications of ``turkey_training`` through Airflow's notifier interface, and the run deadline.

:class:`TurkeyNotifier` is a ``BaseNotifier``: the DAG passes instances as task callbacks
(``on_failure_callback``, ``on_success_callback``), to the approval operator's ``notifiers`` and, for the
run deadline, as the ``AsyncCallback`` of a ``DeadlineAlert`` (run by the triggerer). It turns the
Airflow context into one :class:`Message` and hands it to the providers' own notifiers, one per
configured channel:

* e-mail: ``SmtpNotifier`` on the Airflow connection ``turkey_smtp`` (an ``smtp`` connection; the
  recipients are its extra ``to``, comma-separated, the sender its extra ``from_email``);
* webhook: ``HttpNotifier`` on the connection ``turkey_webhook`` (an ``http`` connection whose host is
  the full URL, e.g. a chat tool's incoming webhook); the body is the JSON of :meth:`Message.payload`,
  whose ``text`` field is what Slack/Mattermost-style webhooks display.

A channel whose connection is not defined is off; with none defined (the embedded default) the
notifier says so once per process in the task log and sends nothing. A channel that fails is logged as
a warning and never fails the task it reports on.

Events: ``run_failed`` (a task failed for good: which task, the one-line reason, links), ``approval``
(a version waits for a human decision: metrics against the champion, link to the approval),
``promoted`` (a new champion), ``challenger_lost`` (info: the champion stays) and ``run_overdue``
(the run is still unfinished ``run_deadline_minutes`` after it was queued, see :class:`RunDeadline`).
"""

from __future__ import annotations

import html
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from airflow.sdk import AsyncCallback, DeadlineAlert
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.definitions.deadline import BaseDeadlineReference

SMTP_CONN_ID = "turkey_smtp"
WEBHOOK_CONN_ID = "turkey_webhook"
RUN_DEADLINE_PARAM = "run_deadline_minutes"
DEFAULT_RUN_DEADLINE_MINUTES = 360

log = logging.getLogger(__name__)
_said_off = False  # "notifications are off" is logged once per process

SEVERITY = {
    "run_failed": "error",
    "run_overdue": "warning",
    "approval": "action",
    "promoted": "info",
    "challenger_lost": "info",
}


# ----------------------------------------------------------------------------------------- the message
@dataclass
class Message:
    """One notification: what happened, where, why, and a link to look at it."""

    event: str
    title: str
    dag_id: str
    run_id: str
    link: str
    task_id: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """``error``, ``warning`` or ``info``, by event (:data:`SEVERITY`)."""
        return SEVERITY.get(self.event, "info")

    def lines(self) -> list[str]:
        """The message as lines: title, DAG, run, task, reason, details (those set), link."""
        out = [self.title, f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        if self.task_id:
            out.append(f"Task: {self.task_id}")
        if self.reason:
            out.append(f"Reason: {self.reason}")
        out += [f"{k.replace('_', ' ').capitalize()}: {_fmt(v)}" for k, v in self.details.items() if v is not None]
        out.append(f"Link: {self.link}")
        return out

    def text(self) -> str:
        """The plain-text body: :meth:`lines`, one per line."""
        return "\n".join(self.lines())

    def subject(self) -> str:
        """The e-mail subject: ``[turkey <severity>] <title>``."""
        return f"[turkey {self.severity}] {self.title}"

    def html(self) -> str:
        """The HTML e-mail body: the title, the other lines as a list, the link."""
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines()[1:-1])
        return (
            f"<p><b>{html.escape(self.title)}</b></p><ul>{rows}</ul>"
            f'<p><a href="{html.escape(self.link, quote=True)}">{html.escape(self.link)}</a></p>'
        )

    def payload(self) -> dict:
        """The webhook's JSON body: the text and every field."""
        return {
            "text": self.text(),
            "event": self.event,
            "severity": self.severity,
            "title": self.title,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "reason": self.reason,
            "link": self.link,
            "details": self.details,
        }


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items() if v is not None)
    return str(value)


def one_line(exc: BaseException | str | None) -> str | None:
    """The last non-empty line of an error message (TurkeyError messages are one line already)."""
    if exc is None:
        return None
    text = str(exc).strip()
    line = text.splitlines()[-1].strip() if text else ""
    if isinstance(exc, BaseException) and not line:
        return type(exc).__name__
    if isinstance(exc, BaseException) and type(exc).__name__ not in ("AirflowFailException", "DataError", "GateError"):
        return f"{type(exc).__name__}: {line}"
    return line


def base_url() -> str:
    """Where links in notifications point: ``[api] base_url``, else Airflow's default address."""
    from turkey_airflow.console.console_links import api_base_url

    return api_base_url("http://localhost:8080")


def run_link(dag_id: str, run_id: str) -> str:
    """The Airflow UI address of a DAG run."""
    return f"{base_url()}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_link(dag_id: str, run_id: str, task_id: str) -> str:
    """The Airflow UI address of a task in a DAG run."""
    return f"{run_link(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"


# ----------------------------------------------------------------------------------------- events
def _xcom(ti, task_id: str) -> dict:
    try:
        value = ti.xcom_pull(task_ids=task_id)
    except Exception:  # noqa: BLE001 - a missing value only thins the message
        return {}
    return value if isinstance(value, dict) else {}


def _metrics(evaluated: dict, registered: dict) -> dict:
    """Challenger and champion figures on this run's validation split (as the champion gate compared)."""
    champ_auc = registered.get("champion_val_auc")
    if champ_auc is None:
        champ_auc = (evaluated.get("champion_on_this_split") or {}).get("val_auc")
    return {
        "challenger": {"val_accuracy": evaluated.get("val_accuracy"),
                       "val_auc": evaluated.get("val_auc", registered.get("challenger_val_auc"))},
        "champion": {"val_auc": champ_auc} if champ_auc is not None else None,
    }


def _failure_reason(context, ti) -> str:
    reason = one_line(context.get("exception"))
    if reason:
        return reason
    # Failed outside the task's own code: the scheduler failed it (e.g. stuck in queued) or it was killed.
    if getattr(ti, "start_date", None) is None:
        from airflow.sdk.configuration import conf

        timeout = conf.getfloat("scheduler", "task_queued_timeout", fallback=600.0)
        tries = conf.getint("scheduler", "num_stuck_in_queued_retries", fallback=2) + 1
        return (
            f"the task never started: it stayed queued on queue '{getattr(ti.task, 'queue', '?')}' with no worker "
            f"taking it ({tries} x [scheduler] task_queued_timeout = {tries * timeout:.0f}s)"
        )
    return "the task process ended without reporting a result (killed, lost worker or timeout); see its log"


def build_message(event: str, context) -> Message | None:
    """The message for ``event`` from a task callback's context; None when there is nothing to say."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id", "?")
    if event == "run_failed":
        task_id = getattr(ti, "task_id", None)
        return Message(
            event,
            f"{dag_id}: run failed at task {task_id}",
            dag_id,
            run_id,
            run_link(dag_id, run_id),
            task_id=task_id,
            reason=_failure_reason(context, ti),
            details={"task_log": task_link(dag_id, run_id, task_id) if task_id else None},
        )
    registered = _xcom(ti, "register")
    if event == "approval":
        from airflow.providers.standard.operators.hitl import HITLOperator

        try:
            link = HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url())
        except Exception:  # noqa: BLE001 - not an HITL task (tests): the task page still helps
            link = task_link(dag_id, run_id, ti.task_id)
        return Message(
            event,
            f"{dag_id}: model {registered.get('version')} waits for your approval",
            dag_id,
            run_id,
            link,
            task_id=ti.task_id,
            reason=registered.get("reason"),
            details={
                "version": registered.get("version"),
                "champion_version": registered.get("champion_version") or "none yet",
                **_metrics(_xcom(ti, "evaluate"), registered),
            },
        )
    if event == "promoted":
        promoted = _xcom(ti, "promote")
        if not promoted:
            return None
        return Message(
            event,
            f"{dag_id}: {promoted['version']} is the new champion",
            dag_id,
            run_id,
            run_link(dag_id, run_id),
            task_id=ti.task_id,
            reason=registered.get("reason"),
            details={
                "version": promoted["version"],
                "previous_champion": promoted.get("previous") or "none",
                **_metrics(_xcom(ti, "evaluate"), registered),
                "approved_by": promoted.get("approved_by"),
                "submission": promoted.get("submission"),
            },
        )
    if event == "challenger_lost":
        if not registered or registered.get("promote"):
            return None
        return Message(
            event,
            f"{dag_id}: challenger {registered.get('version')} lost; champion {registered.get('champion_version')} stays",
            dag_id,
            run_id,
            run_link(dag_id, run_id),
            task_id=ti.task_id,
            reason=registered.get("reason"),
            details={"version": registered.get("version"), "champion_version": registered.get("champion_version"),
                     **_metrics(_xcom(ti, "evaluate"), registered)},
        )
    raise ValueError(f"unknown notification event {event!r}")


def overdue_message(context: dict, minutes: float | None = None) -> Message:
    """The ``run_overdue`` message from a deadline callback's context (``dag_run`` as JSON, ``deadline``)."""
    dr = context.get("dag_run") or {}
    dag_id, run_id = dr.get("dag_id", "?"), dr.get("dag_run_id") or dr.get("run_id", "?")
    deadline = (context.get("deadline") or {}).get("deadline_time")
    if minutes is None and deadline and dr.get("queued_at"):
        minutes = (_parse_time(deadline) - _parse_time(dr["queued_at"])).total_seconds() / 60
    return Message(
        "run_overdue",
        f"{dag_id}: run still unfinished" + (f" {minutes:.3g} minutes after it was queued" if minutes else ""),
        dag_id,
        run_id,
        run_link(dag_id, run_id),
        reason=f"the run is in state '{dr.get('state')}' past its deadline {deadline}",
        details={"queued_at": dr.get("queued_at"), "start_date": dr.get("start_date")},
    )


def _parse_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# ----------------------------------------------------------------------------------------- channels
def _connection(conn_id: str):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


async def _async_connection(conn_id: str):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return await Connection.async_get(conn_id)
    except AirflowNotFoundException:
        return None


def channels(smtp_conn, webhook_conn, message: Message) -> list[tuple[str, BaseNotifier]]:
    """The providers' notifiers for the configured channels, carrying ``message``."""
    from airflow.providers.http.notifications.http import HttpNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    class _Email(SmtpNotifier):
        template_fields = ()  # the message is final text: no Jinja on error messages

    class _Webhook(HttpNotifier):
        template_fields = ()

    out: list[tuple[str, BaseNotifier]] = []
    if smtp_conn is not None:
        to = [a.strip() for a in str((smtp_conn.extra_dejson or {}).get("to", "")).split(",") if a.strip()]
        if to:
            out.append(("e-mail", _Email(to=to, subject=message.subject(), html_content=message.html(),
                                         smtp_conn_id=SMTP_CONN_ID)))
        else:
            log.warning("connection %s has no recipients (extra 'to'): e-mail is off", SMTP_CONN_ID)
    if webhook_conn is not None:
        out.append(("webhook", _Webhook(http_conn_id=WEBHOOK_CONN_ID, json=message.payload(),
                                        headers={"Content-Type": "application/json"})))
    return out


def _say_off() -> None:
    global _said_off
    if not _said_off:
        _said_off = True
        log.info(
            "notifications are off: define the Airflow connection %s (e-mail) and/or %s (webhook) to receive "
            "alerts on failed runs, approvals and promotions", SMTP_CONN_ID, WEBHOOK_CONN_ID,
        )


def send(message: Message, context) -> int:
    """Send ``message`` on every configured channel; returns how many took it."""
    sent = 0
    chans = channels(_connection(SMTP_CONN_ID), _connection(WEBHOOK_CONN_ID), message)
    if not chans:
        _say_off()
    for name, notifier in chans:
        try:
            notifier.notify(context)
            sent += 1
        except Exception as exc:  # noqa: BLE001 - an alert channel must not fail the task it reports on
            log.warning("could not send the %s notification %r: %s", name, message.title, exc)
    if sent:
        log.info("notified (%s) by %s: %s", message.event, ", ".join(n for n, _ in chans), message.title)
    return sent


async def send_async(message: Message, context) -> int:
    """:func:`send` for the triggerer (deadline callbacks)."""
    sent = 0
    chans = channels(await _async_connection(SMTP_CONN_ID), await _async_connection(WEBHOOK_CONN_ID), message)
    if not chans:
        _say_off()
    for name, notifier in chans:
        try:
            await notifier.async_notify(context)
            sent += 1
        except Exception as exc:  # noqa: BLE001
            log.warning("could not send the %s notification %r: %s", name, message.title, exc)
    return sent


class TurkeyNotifier(BaseNotifier):
    """Send the ``event`` notification (see the module doc) on every configured channel."""

    def __init__(self, event: str, **kwargs):
        super().__init__(**kwargs)
        if event not in SEVERITY:
            raise ValueError(f"unknown notification event {event!r}; choose from {', '.join(SEVERITY)}")
        self.event = event

    def notify(self, context) -> None:
        """Build the event's message from the task context and send it (nothing when it does not apply)."""
        message = build_message(self.event, context)
        if message is not None:
            send(message, context)
        if self.event == "run_failed" and message is not None:
            # The failure callback runs after Airflow logged the traceback: end the task log on the reason.
            log.error("%s failed: %s", message.task_id, message.reason)


async def run_overdue(context: dict | None = None, minutes: float | None = None) -> int:
    """Deadline-alert callback (runs in the triggerer): the run is still unfinished past its deadline."""
    context = context or {}
    return await send_async(overdue_message(context, minutes), context)


# ----------------------------------------------------------------------------------------- run deadline
@dataclass
class RunDeadline(BaseDeadlineReference):
    """Deadline reference: when the run was queued plus its ``run_deadline_minutes`` param (0 = none).

    Airflow's built-in references take a fixed ``interval`` (or an Airflow Variable); this one reads the
    run's own conf, so each run can set its deadline like any other DAG param. Use it with
    ``interval=timedelta(0)``. Registered with the scheduler by ``notify_plugin.py``.
    """

    param: str = RUN_DEADLINE_PARAM
    default_minutes: float = DEFAULT_RUN_DEADLINE_MINUTES
    required_kwargs = {"dag_id", "run_id"}

    def serialize_reference(self) -> dict:
        """The reference as stored with the serialized DAG: its type, param name and default minutes."""
        return {"reference_type": self.reference_name, "param": self.param, "default_minutes": self.default_minutes}

    @classmethod
    def deserialize_reference(cls, reference_data: dict) -> RunDeadline:
        """The reference from :meth:`serialize_reference`'s dict."""
        return cls(reference_data.get("param", RUN_DEADLINE_PARAM),
                   reference_data.get("default_minutes", DEFAULT_RUN_DEADLINE_MINUTES))

    def minutes_for(self, conf: dict | None) -> float:
        """The deadline in minutes for a run with ``conf`` (its param, else the default; 0 = none)."""
        value = (conf or {}).get(self.param, self.default_minutes)
        return float(self.default_minutes if value is None else value)

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **kwargs) -> datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.queued_at, DagRun.run_after, DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).first()
        if row is None:
            return None
        minutes = self.minutes_for(row.conf)
        start = row.queued_at or row.run_after
        if minutes <= 0 or start is None:
            return None
        return start + timedelta(minutes=minutes)


def run_deadline_alert() -> DeadlineAlert | None:
    """The DAG's ``deadline``: :class:`RunDeadline` with :func:`run_overdue` as the triggerer callback.

    None when the file is parsed by ``airflow dags test``: there is no scheduler there to check deadlines,
    and Airflow 3.3's ``dags test`` fails at the end of a *successful* run of a DAG with deadline alerts
    (``DagRun.update_state`` passes the in-memory serialized alerts, dicts, to
    ``DeadlineAlertModel.get_by_id``, which expects their database ids).
    """
    if sys.argv[1:3] == ["dags", "test"]:
        return None
    return DeadlineAlert(reference=RunDeadline(), interval=timedelta(0), callback=AsyncCallback(run_overdue),
                         name="run_overdue")
