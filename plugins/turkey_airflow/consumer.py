"""Example downstream task: what a consumer of the submission asset does."""

from __future__ import annotations

import csv
import logging

from airflow.sdk import get_current_context

from turkey_airflow.assets import SUBMISSION
from turkey_airflow.runtime import setup_task_process

log = logging.getLogger(__name__)


def summarise_submission() -> dict:
    """Summarise the submission the triggering asset event names (rows, predicted turkeys, mean
    probability, metrics); an empty dict for a run without such an event."""
    setup_task_process()
    ctx = get_current_context()
    events = ctx["triggering_asset_events"].get(SUBMISSION, [])
    if not events:
        log.info("no submission event (manual run?); nothing to do")
        return {}
    extra = dict(events[-1].extra)
    with open(extra["path"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    probs = [float(r["is_turkey"]) for r in rows]
    summary = {
        "version": extra["version"],
        "rows": len(rows),
        "predicted_turkeys": sum(p >= 0.5 for p in probs),
        "mean_probability": round(sum(probs) / len(probs), 4) if probs else None,
        "metrics": extra.get("metrics"),
    }
    log.info("submission %s: %s", extra["path"], summary)
    return summary
