"""Reports: ``validation-<split>.json`` (verdict, failures, warnings, the rule registry) and the Data Docs site."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from ml.fsutil import write_json
from ml.validation.docs import build_docs, structural_result, trim_for_docs
from ml.validation.engine import Engine
from ml.validation.outcome import ValidationOutcome
from ml.validation.rules import REGISTRY

log = logging.getLogger(__name__)

JSON_RECORDS = 100  # records listed per rule in the JSON summary


def write_reports(outcome: ValidationOutcome, engine: Engine, report_dir: Path, result, min_records: int,
                  took: float) -> None:
    """Write the Data Docs site and the JSON summary into ``report_dir``; set the outcome's report paths.

    ``result`` is the GX result (None when the file could not be parsed: a hand-made result shows the
    structural failure). A report that cannot be written becomes a warning, never hides the verdict.
    """
    split = outcome.split
    site_dir = report_dir / f"data-docs-{split}"
    with engine.lock:
        try:
            if result is None:
                result, batch = structural_result(split, outcome.failures[0], outcome.path), "unparsed_file"
            else:
                result.meta["file"] = outcome.path
                trim_for_docs(result)
                batch = result.batch_id or "records"
            outcome.report_html = build_docs(engine, site_dir, result, split, batch)
        except Exception as exc:  # noqa: BLE001 - a broken report must not hide the verdict
            outcome.warnings.append(f"report: could not build Data Docs in {site_dir}: {type(exc).__name__}: {exc}")
    payload = {
        "file": outcome.path,
        "split": split,
        "ok": outcome.ok,
        "n_records": len(outcome.records) if outcome.records is not None else None,
        "min_records": min_records,
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(took, 3),
        "failures": [
            {
                "rule": f.rule,
                "message": f.message,
                "n_records": len(f.records),
                "records": [[i, v] for i, v in f.records[:JSON_RECORDS]],
            }
            for f in outcome.failures
        ],
        "warnings": outcome.warnings,
        "report_html": outcome.report_html,
        "rules": {r.name: {"kind": r.kind, "description": r.text} for r in REGISTRY},
    }
    try:
        outcome.report_json = write_json(payload, report_dir / f"validation-{split}.json", sort_keys=False)
    except OSError as exc:  # e.g. a read-only report folder: the verdict still stands
        outcome.warnings.append(f"report: could not write {report_dir}: {exc}")
