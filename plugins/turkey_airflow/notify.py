"""Notifications of ``turkey_training``: message templates, delivered by the providers' notifiers.

:class:`TurkeyNotifier` is a ``BaseNotifier`` the DAG passes as a task callback, to the approval
operator's ``notifiers`` and (through :func:`run_overdue`) as the deadline alert's callback. Each event is
one :class:`Event` of Jinja templates (:data:`EVENTS`), rendered against a few facts of the run: its ids and
links, the failure's one-line reason, and ``result`` -- the return value of the task the DAG names
(``TurkeyNotifier("approval", result_of="register")``; by default the notifying task's own). The rendered
:class:`Message` goes to the providers' notifiers, one per configured channel:

* e-mail: ``SmtpNotifier`` on the Airflow connection ``turkey_smtp`` (recipients: its extra ``to``,
  comma-separated; sender: its extra ``from_email``);
* webhook: ``HttpNotifier`` on ``turkey_webhook`` (an ``http`` connection whose host is the full URL); the
  body is :meth:`Message.payload`, whose ``text`` field chat tools display.

A channel whose connection is not defined is off; with none (the embedded default) that is said once per
process and nothing is sent. A failing channel is logged and never fails the task it reports on. Sending is
asynchronous (the triggerer runs deadline callbacks in its event loop); a task callback runs the same
coroutine to completion.
"""

from __future__ import annotations

import asyncio
import html
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from airflow.sdk import AsyncCallback, DeadlineAlert
from airflow.sdk.bases.notifier import BaseNotifier
from airflow.sdk.definitions.deadline import BaseDeadlineReference

SMTP_CONN_ID = "turkey_smtp"
WEBHOOK_CONN_ID = "turkey_webhook"
DEADLINE_PARAM = "run_deadline_minutes"

log = logging.getLogger(__name__)
_said_off = False  # "notifications are off" is logged once per process


@dataclass(frozen=True)
class Event:
    """One kind of notification: its severity and the Jinja templates of its title, reason, detail lines
    and link. ``when``: send only if it renders to something (e.g. ``{% if result.version %}1{% endif %}``)."""

    severity: str
    title: str
    reason: str = "{{ result.reason }}"
    details: dict[str, str] = field(default_factory=dict)
    link: str = "{{ links.run }}"
    when: str = ""


#: What a challenger-vs-champion message details: both versions and their AUCs on the gate's records.
_VERSUS = {"version": "{{ result.version }}", "champion_version": "{{ result.champion_version or 'none yet' }}",
           "challenger_val_auc": "{{ result.challenger_val_auc | fmt }}",
           "champion_val_auc": "{{ result.champion_val_auc | fmt }}"}

EVENTS = {
    "run_failed": Event("error", "{{ dag_id }}: run failed at task {{ task_id }}", "{{ failure }}",
                        {"task_log": "{{ links.task }}"}),
    "approval": Event("action", "{{ dag_id }}: model {{ result.version }} waits for your approval",
                      details=_VERSUS, link="{{ links.approval }}"),
    "promoted": Event("info", "{{ dag_id }}: {{ result.version }} is the new champion",
                      details={"version": "{{ result.version }}",
                               "previous_champion": "{{ result.previous or 'none' }}",
                               "approved_by": "{{ result.approved_by or '' }}",
                               "submission": "{{ result.submission }}"},
                      when="{% if result.version %}1{% endif %}"),
    "challenger_lost": Event("info", "{{ dag_id }}: challenger {{ result.version }} lost; champion "
                             "{{ result.champion_version }} stays", details=_VERSUS, when="{% if result and not result.promote %}1{% endif %}"),
    "run_overdue": Event("warning", "{{ dag_id }}: run still unfinished{% if minutes %} {{ '%.3g' % minutes }} "
                         "minutes after it was queued{% endif %}",
                         "the run is in state '{{ state }}' past its deadline {{ deadline }}",
                         {"queued_at": "{{ queued_at }}", "start_date": "{{ start_date }}"}),
}


@dataclass
class Message:
    """One rendered notification: what happened, where, why, and a link to look at it."""

    event: str
    severity: str
    title: str
    dag_id: str
    run_id: str
    link: str
    task_id: str | None = None
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Title, DAG, run, task, reason, details, link (those set), one per line."""
        out = [self.title, f"DAG: {self.dag_id}", f"Run: {self.run_id}"]
        out += [f"Task: {self.task_id}"] if self.task_id else []
        out += [f"Reason: {self.reason}"] if self.reason else []
        out += [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in self.details.items()]
        return [*out, f"Link: {self.link}"]

    def text(self) -> str:
        """The plain-text body."""
        return "\n".join(self.lines())

    def html(self) -> str:
        """The HTML e-mail body: the title, the other lines as a list, the link."""
        rows = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines()[1:-1])
        link = html.escape(self.link, quote=True)
        return f'<p><b>{html.escape(self.title)}</b></p><ul>{rows}</ul><p><a href="{link}">{link}</a></p>'

    def payload(self) -> dict:
        """The webhook's JSON body: the text and every field."""
        return {"text": self.text(), "event": self.event, "severity": self.severity, "title": self.title,
                "dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id, "reason": self.reason,
                "link": self.link, "details": self.details}


def render(event: str, facts: dict) -> Message | None:
    """The :class:`Message` of ``event`` for ``facts`` (the template variables), or None when its ``when``
    says there is nothing to tell."""
    import jinja2

    spec = EVENTS[event]
    env = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
    env.filters["fmt"] = lambda v: f"{v:.4f}" if isinstance(v, float) else ("" if v is None else v)

    def r(template: str) -> str:
        return env.from_string(template).render(**facts).strip()

    if spec.when and not r(spec.when):
        return None
    details = {k: text for k, template in spec.details.items() if (text := r(template)) not in ("", "None")}
    return Message(event, spec.severity, r(spec.title), facts["dag_id"], facts["run_id"], r(spec.link),
                   facts.get("task_id"), r(spec.reason) or None, details)


# ----------------------------------------------------------------------------------------- facts
def one_line(exc: BaseException | str | None) -> str | None:
    """The last non-empty line of an error message, prefixed by its type unless it is one of ours."""
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


def failure_reason(context) -> str:
    """Why the task of a failure callback's ``context`` failed, in one line."""
    ti = context.get("ti") or context.get("task_instance")
    if reason := one_line(context.get("exception")):
        return reason
    if getattr(ti, "start_date", None) is None:  # the scheduler failed it (stuck in queued) or it was killed
        from airflow.sdk.configuration import conf

        timeout = conf.getfloat("scheduler", "task_queued_timeout", fallback=600.0)
        tries = conf.getint("scheduler", "num_stuck_in_queued_retries", fallback=2) + 1
        return (f"the task never started: it stayed queued on queue '{getattr(ti.task, 'queue', '?')}' with no "
                f"worker taking it ({tries} x [scheduler] task_queued_timeout = {tries * timeout:.0f}s)")
    return "the task process ended without reporting a result (killed, lost worker or timeout); see its log"


def task_facts(context, result_of: str | None = None) -> dict:
    """The template variables of a task callback's ``context``: ids, links and ``result`` (the XCom of task
    ``result_of``, default the notifying task; {} when there is none)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", "?")
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None) or context.get("run_id", "?")
    task_id = getattr(ti, "task_id", None)
    links = {"run": run_link(dag_id, run_id)}
    links["task"] = f"{links['run']}/tasks/{quote(task_id or '', safe='')}"
    try:
        from airflow.providers.standard.operators.hitl import HITLOperator

        links["approval"] = HITLOperator.generate_link_to_ui_from_context(context=context, base_url=base_url())
    except Exception:  # noqa: BLE001 - not an HITL task: the task page still helps
        links["approval"] = links["task"]
    try:
        result = ti.xcom_pull(task_ids=result_of or task_id)
    except Exception:  # noqa: BLE001 - no result only thins the message
        result = None
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "links": links,
            "result": result if isinstance(result, dict) else {}}


# ----------------------------------------------------------------------------------------- channels
def channels(smtp_conn, webhook_conn, message: Message) -> list[tuple[str, BaseNotifier]]:
    """The providers' notifiers for the configured channels, carrying the rendered ``message``."""
    from airflow.providers.http.notifications.http import HttpNotifier
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    class _Email(SmtpNotifier):
        template_fields = ()  # the message is final text: no second rendering of error messages

    class _Webhook(HttpNotifier):
        template_fields = ()

    out: list[tuple[str, BaseNotifier]] = []
    if smtp_conn is not None:
        to = [a.strip() for a in str((smtp_conn.extra_dejson or {}).get("to", "")).split(",") if a.strip()]
        if to:
            out.append(("e-mail", _Email(to=to, subject=f"[turkey {message.severity}] {message.title}",
                                         html_content=message.html(), smtp_conn_id=SMTP_CONN_ID)))
        else:
            log.warning("connection %s has no recipients (extra 'to'): e-mail is off", SMTP_CONN_ID)
    if webhook_conn is not None:
        out.append(("webhook", _Webhook(http_conn_id=WEBHOOK_CONN_ID, json=message.payload(),
                                        headers={"Content-Type": "application/json"})))
    return out


async def _connection(conn_id: str):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return await Connection.async_get(conn_id)
    except AirflowNotFoundException:
        return None


async def send(message: Message, context) -> int:
    """Send ``message`` on every configured channel; returns how many took it."""
    global _said_off
    chans = channels(await _connection(SMTP_CONN_ID), await _connection(WEBHOOK_CONN_ID), message)
    if not chans and not _said_off:
        _said_off = True
        log.info("notifications are off: define the Airflow connection %s (e-mail) and/or %s (webhook) to "
                 "receive alerts on failed runs, approvals and promotions", SMTP_CONN_ID, WEBHOOK_CONN_ID)
    sent = 0
    for name, notifier in chans:
        try:
            await notifier.async_notify(context)
            sent += 1
        except Exception as exc:  # noqa: BLE001 - an alert channel must not fail the task it reports on
            log.warning("could not send the %s notification %r: %s", name, message.title, exc)
    if sent:
        log.info("notified (%s) by %s: %s", message.event, ", ".join(n for n, _ in chans), message.title)
    return sent


def run_to_completion(coro):
    """Run a coroutine from synchronous code (a task callback), also where an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class TurkeyNotifier(BaseNotifier):
    """Send the ``event`` notification (:data:`EVENTS`) about the run, ``result`` being the return value of
    the task ``result_of`` (default: the notifying task's own)."""

    def __init__(self, event: str, result_of: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if event not in EVENTS:
            raise ValueError(f"unknown notification event {event!r}; choose from {', '.join(EVENTS)}")
        self.event, self.result_of = event, result_of

    def notify(self, context) -> None:
        """Render the event's message from the task context and send it (nothing when it does not apply)."""
        facts = task_facts(context, self.result_of)
        if self.event == "run_failed":
            facts["failure"] = failure_reason(context)
        message = render(self.event, facts)
        if message is not None:
            run_to_completion(send(message, context))
        if self.event == "run_failed" and message is not None:
            # The failure callback runs after Airflow logged the traceback: end the task log on the reason.
            log.error("%s failed: %s", message.task_id, message.reason)


# ----------------------------------------------------------------------------------------- run deadline
async def run_overdue(context: dict | None = None, minutes: float | None = None) -> int:
    """Deadline-alert callback (runs in the triggerer): the run is still unfinished past its deadline."""
    context = context or {}
    dr, deadline = context.get("dag_run") or {}, (context.get("deadline") or {}).get("deadline_time")
    if minutes is None and deadline and dr.get("queued_at"):
        minutes = (_parse_time(deadline) - _parse_time(dr["queued_at"])).total_seconds() / 60
    dag_id, run_id = dr.get("dag_id", "?"), dr.get("dag_run_id") or dr.get("run_id", "?")
    facts = {"dag_id": dag_id, "run_id": run_id, "links": {"run": run_link(dag_id, run_id)}, "minutes": minutes,
             "state": dr.get("state"), "deadline": deadline, "queued_at": dr.get("queued_at"),
             "start_date": dr.get("start_date"), "result": {}}
    return await send(render("run_overdue", facts), context)


def _parse_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class RunDeadline(BaseDeadlineReference):
    """Deadline reference: when the run was queued plus its ``run_deadline_minutes`` param (0 = none).

    Airflow's built-in references take a fixed ``interval`` (or an Airflow Variable); this one reads the
    run's own conf, so each run can set its deadline like any other DAG param. Use it with
    ``interval=timedelta(0)``. Registered with the scheduler by :class:`turkey_airflow.plugins.TurkeyNotifyPlugin`.
    """

    param: str = DEADLINE_PARAM
    default_minutes: float | None = None
    required_kwargs = {"dag_id", "run_id"}

    def serialize_reference(self) -> dict:
        """The reference as stored with the serialized DAG: its type, param name and default minutes."""
        return {"reference_type": self.reference_name, "param": self.param, "default_minutes": self.default_minutes}

    @classmethod
    def deserialize_reference(cls, reference_data: dict) -> RunDeadline:
        """The reference from :meth:`serialize_reference`'s dict."""
        return cls(reference_data.get("param", DEADLINE_PARAM), reference_data.get("default_minutes"))

    def minutes_for(self, conf: dict | None) -> float:
        """The deadline in minutes for a run with ``conf`` (its param, else the default; 0 = none)."""
        from ml.config import RunConfig

        default = RunConfig.model_fields[self.param].default if self.default_minutes is None else self.default_minutes
        value = (conf or {}).get(self.param)
        return float(default if value is None else value)

    def _evaluate_with(self, *, session, dag_id: str, run_id: str, **kwargs) -> datetime | None:
        from airflow.models import DagRun
        from sqlalchemy import select

        row = session.execute(select(DagRun.queued_at, DagRun.run_after, DagRun.conf)
                              .where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).first()
        if row is None:
            return None
        minutes, start = self.minutes_for(row.conf), row.queued_at or row.run_after
        return None if minutes <= 0 or start is None else start + timedelta(minutes=minutes)


def run_deadline_alert() -> DeadlineAlert | None:
    """The DAG's ``deadline``: :class:`RunDeadline` with :func:`run_overdue` as the triggerer callback.

    None when the DAG file is parsed by ``airflow dags test``. This special case must stay while Airflow
    3.3's ``dags test`` fails at the end of every *successful* run of a DAG with deadline alerts
    (``DagRun.update_state`` hands the in-memory serialized alerts, dicts, to
    ``DeadlineAlertModel.get_by_id``, which expects database ids: "'dict' object has no attribute 'hex'",
    the run left in state running -- seen again on 3.3.2 with this check disabled); ``dags test`` has no
    scheduler to check deadlines anyway.
    """
    if sys.argv[1:3] == ["dags", "test"]:
        return None
    return DeadlineAlert(reference=RunDeadline(), interval=timedelta(0), callback=AsyncCallback(run_overdue),
                         name="run_overdue")
