"""``validate_file``: parse a train/test file, run the rules, add cross-file warnings, write reports."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ml.config import RunConfig
from ml.data import read_records
from ml.errors import DataError
from ml.validation.drift import DRIFT_THRESHOLD, cross_file_warnings
from ml.validation.engine import SPLITS, engine, quiet_gx_logs
from ml.validation.judge import judge
from ml.validation.outcome import Failure, ValidationOutcome
from ml.validation.report import write_reports

log = logging.getLogger(__name__)

#: The run setting's default (:class:`ml.config.RunConfig`), for callers that validate outside a run.
DEFAULT_MIN_RECORDS = RunConfig.model_fields["min_records"].default


def validate_file(
    path,
    split: str,
    *,
    report_dir=None,
    min_records: int = DEFAULT_MIN_RECORDS,
    reference: ValidationOutcome | None = None,
    drift_threshold: float = DRIFT_THRESHOLD,
    max_in_memory: int | None = None,
) -> ValidationOutcome:
    """Validate a train or test file. Never raises for bad data: problems land in ``failures``/``warnings``.

    ``reference`` is the train outcome when validating test (vid_id overlap and drift warnings).
    ``min_records`` applies to training files only (``records.min_count``); a test file needs one record,
    in the DAG and the CLI alike.
    ``max_in_memory``: see :func:`ml.data.read_records`. With ``report_dir``, writes ``validation-<split>.json`` and a Data Docs site
    ``data-docs-<split>/index.html`` there (also when the file fails).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    t0 = time.perf_counter()
    quiet_gx_logs()
    if split != "train":
        min_records = 1  # records.min_count is a training-file rule
    path = str(path)
    outcome = ValidationOutcome(path=path, split=split, records=None)
    gx = None  # started only when needed: a file that fails to parse is judged without GX
    result = None
    try:
        records = read_records(path, max_in_memory)
    except DataError as exc:
        outcome.failures.append(Failure(exc.rule, exc.message, list(exc.records)))
        records = None
    if records is not None:
        from ml.expectations.columns import check_frame

        outcome.records = records
        frame = check_frame(records.summary_frame())
        gx = engine()
        with gx.lock:
            result = gx.run(split, frame, min_records)
        failures, warnings = judge(result, records.summary, len(records), min_records)
        outcome.failures += failures
        outcome.warnings += warnings
        if reference is not None and split == "test":
            outcome.warnings += cross_file_warnings(records, reference, drift_threshold)
    if report_dir is not None:
        write_reports(outcome, gx or engine(), Path(report_dir), result, min_records, time.perf_counter() - t0)
    log.debug("validated %s (%s) in %.2f s: %d failure(s)", path, split, time.perf_counter() - t0,
              len(outcome.failures))
    return outcome
