"""Example downstream task: what a consumer of the submission asset does."""

from __future__ import annotations

import csv
import logging

from airflow.sdk import get_current_context

from turkey_airflow.assets import SUBMISSION

log = logging.getLogger("ml")


def summarise_submission() -> dict:
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
