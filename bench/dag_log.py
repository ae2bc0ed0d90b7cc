"""Reading an ``airflow dags test`` run back: its log lines' timestamps, our task-body markers, the metadata DB.

Collection only (plain dicts, no Markdown). Task bodies are timed from the lines our own glue writes around
every body (:mod:`ml.task_marker`), never from an Airflow source location; a task that ran without a
marker raises :class:`MissingMarker`, so a moved or lost marker fails the bench instead of silently booking
the body as Airflow overhead.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from datetime import UTC, datetime

from ml import task_marker

log = logging.getLogger(__name__)

TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?\s")
DAG_ID = "turkey_training"


class MissingMarker(RuntimeError):
    """A task ran but its log has no complete ``turkey task <id>: body …`` pair (ml.task_marker)."""


def timestamp(s: str) -> float:
    """A log line's ISO timestamp (UTC, with or without the trailing Z) as POSIX seconds."""
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


def timed_events(output: str) -> list[tuple[float, str]]:
    """``(timestamp, line)`` for every timestamped line of ``output``; raises when there are none."""
    events = [(timestamp(m.group(1)), line) for line in output.splitlines() if (m := TS.match(line))]
    if not events:
        raise RuntimeError("no timestamped log lines in the dags test output")
    return events


def body_markers(window: list[tuple[float, str]], task: str) -> dict:
    """The body of ``task`` in its log ``window``: ``{start, seconds, outcome, rss_mib}`` from the markers.

    ``start`` is the started line's timestamp, ``seconds`` and ``rss_mib`` come from the finished/failed
    line (the body's own clock). Raises :class:`MissingMarker` when either line is missing.
    """
    start = end = None
    for t, line in window:
        m = task_marker.parse(line)
        if m is None or m["task"] != task:
            continue
        if m["event"] == "started" and start is None:
            start = t
        elif m["event"] in ("finished", "failed"):
            end = m
    if start is None or end is None:
        missing = "started" if start is None else "finished/failed"
        raise MissingMarker(
            f"task {task!r} ran but its log has no '{missing}' body marker (ml.task_marker: "
            f"{task_marker.STARTED.format(task=task)!r}); is it wrapped in task_body?"
        )
    return {"start": start, "seconds": end["seconds"], "outcome": end["event"], "rss_mib": end["rss_mib"]}


def _db_rows(db_path) -> tuple[dict, dict]:
    """Task-instance states/durations and XCom rows/bytes per task of the DAG, from the sqlite metadata DB."""
    ti, xcom = {}, {}
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for task, state, dur in con.execute(
            "select task_id, state, duration from task_instance where dag_id=?", (DAG_ID,)
        ):
            ti[task] = {"state": state, "duration": dur or 0.0}
        for task, n, size in con.execute(
            "select task_id, count(*), sum(length(value)) from xcom where dag_id=? group by task_id", (DAG_ID,)
        ):
            xcom[task] = {"rows": n, "bytes": size or 0}
    finally:
        con.close()
    return ti, xcom


def _ml_lines(events: list[tuple[float, str]]) -> dict:
    """Figures our ml code logs (validation seconds, epochs, fit seconds, validation metrics) and when."""
    ml = {}
    for t, ln in events:
        m = re.search(r"validated .* \((train|test)\): OK in ([\d.]+)s", ln)
        if m:
            ml[f"validate_{m.group(1)}"] = float(m.group(2))
        m = re.search(r"trained (\d+) epoch\(s\) in ([\d.]+)s", ln)
        if m:
            ml["epochs_run"] = int(m.group(1))
            ml["fit"] = float(m.group(2))
            ml["fit_logged_at"] = t
        if "training on " in ln and "[ml." in ln:
            ml["training_on_at"] = t
        m = re.search(r"validation accuracy ([\d.]+), ROC AUC ([\d.]+)", ln)
        if m:
            ml["val_accuracy"], ml["val_auc"] = float(m.group(1)), float(m.group(2))
    return ml


def dag_breakdown(output: str, started_at: float, wall: float, db_path) -> dict:
    """Where a ``dags test`` run's wall time went: from its log lines' timestamps, body markers and the DB.

    Per task (``dags test`` runs them one after another in its own process): ``pre`` = ``[DAG TEST]
    starting`` -> the body's started marker (Airflow: TI start through the execution API, rendering,
    context); ``body`` = the seconds in the body's finished/failed marker (our code); ``post`` = body end ->
    ``[DAG TEST] end task`` (XCom pushes, state update); ``gap`` = -> next start. ``rss_mib`` is the
    process's peak RSS at the body's end (one process for every task under ``dags test``).
    Raises :class:`MissingMarker` for a task that started but logged no body marker.
    """
    events = timed_events(output)
    first = events[0][0]
    finished = next((t for t, ln in events if "DagRun Finished" in ln), events[-1][0])
    starts = [
        (i, t, re.search(r"starting task_id=(\S+)", ln).group(1))
        for i, (t, ln) in enumerate(events)
        if "[DAG TEST] starting task_id=" in ln
    ]
    phases = {}
    for k, (i, t, task) in enumerate(starts):
        j_end = starts[k + 1][0] if k + 1 < len(starts) else len(events)
        nxt = starts[k + 1][1] if k + 1 < len(starts) else finished
        window = events[i:j_end]
        body = body_markers(window, task)
        e = next((tt for tt, ln in window if f"[DAG TEST] end task task_id={task} " in ln), None)
        body_end = body["start"] + body["seconds"]
        e = e if e is not None else body_end
        phases[task] = {
            "segment": nxt - t,
            "pre": body["start"] - t,
            "body": body["seconds"],
            "post": max(e - body_end, 0.0),
            "gap": nxt - e,
            "outcome": body["outcome"],
            "rss_mib": body["rss_mib"],
        }
    ti, xcom = _db_rows(db_path)
    ml = _ml_lines(events)
    tr = next((t for _, t, task in starts if task == "train"), None)
    if tr is not None and "training_on_at" in ml and "train" in phases:
        body_start = tr + phases["train"]["pre"]
        ml["train_before_fit"] = ml["training_on_at"] - body_start
        if "fit_logged_at" in ml:
            ml["train_after_fit"] = body_start + phases["train"]["body"] - ml["fit_logged_at"]
    ok = any("DagRun Finished" in ln and "state=success" in ln for _, ln in events) or (
        bool(ti) and all(v["state"] in ("success", "skipped") for v in ti.values())
    )
    return {
        "ok": ok,
        "startup": first - started_at,
        "parse_and_create_run": (starts[0][1] - first) if starts else None,
        "phases": phases,
        "ti": ti,
        "xcom": xcom,
        "teardown": started_at + wall - finished,
        "ml": ml,
    }
