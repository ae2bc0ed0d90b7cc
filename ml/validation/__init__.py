"""Validate a train/test JSON file against the data rules; write Data Docs; quarantine rejected files.

Parsing (:func:`ml.data.read_records`) checks the structure and measures every record; the record and
file rules then run as Great Expectations suites (``ml/expectations/``) on a scalar one-row-per-record
table, so they are vectorised and cost well under a second even at 100x Kaggle size. Cross-file checks
(train vs test) are plain numpy. A rule either *fails* the file or only *warns*.

The rules, generated from the registry in :mod:`ml.validation.rules` (the one place they are written;
*Checked*: ``parse`` = while parsing, ``gx`` = a GX expectation, ``cross-file`` = test vs train):

<RULES TABLE>

``records.min_count`` needs ``min_records`` records (default 100) in a training file, one in a test file.
``drift.frame_mean`` warns when |mean(test frame_mean) - mean(train frame_mean)| exceeds 0.5 x
sd(train frame_mean), frame_mean being a record's mean value; it and ``overlap.vid_id`` need the train
outcome (``validate_file(..., reference=train_outcome)``).

A record that breaks one rule is not also reported by the rules that depend on it (a record without
``audio_embedding`` breaks ``fields.required`` only). Every failure lists *all* offending records as
``(index, vid_id)`` (vid_id None where the record has no usable one); messages show the first 10.

Reports (``validate_file(..., report_dir=DIR)``, also written when the file fails): ``DIR/validation-<split>.json``
(verdict, failures with up to 100 records each, warnings) and a static GX Data Docs site
``DIR/data-docs-<split>/`` (the suite and this run's results; each expectation is labelled with its rule);
``report_html`` is this run's result page in it, which renders offline too. Train and test may share ``DIR``.
``reject_file`` moves a bad file to ``rejected/`` beside its folder.

The GX context (ephemeral, offline, no analytics, no progress bars) is created once per process and
reused: its start-up costs seconds, a validation run costs a fraction of one. Results are not kept in
the context's store (serialising a COMPLETE result at 120k records costs seconds).

Modules: :mod:`~ml.validation.rules` (the registry), :mod:`~ml.validation.engine` (GX context),
:mod:`~ml.validation.judge` (GX result -> failures), :mod:`~ml.validation.drift` (train vs test),
:mod:`~ml.validation.docs` and :mod:`~ml.validation.report` (reports), :mod:`~ml.validation.quarantine`
(``reject_file``), :mod:`~ml.validation.validate` (``validate_file``).
"""

from __future__ import annotations

import logging

from ml.validation.drift import DRIFT_THRESHOLD
from ml.validation.engine import SPLITS, quiet_gx_logs
from ml.validation.engine import engine as _engine
from ml.validation.outcome import Failure, ValidationOutcome
from ml.validation.quarantine import reject_file
from ml.validation.rules import REGISTRY, RULES, Rule, rules_table
from ml.validation.validate import DEFAULT_MIN_RECORDS, validate_file

log = logging.getLogger(__name__)

RULES_TABLE_MARK = "<RULES TABLE>"
__doc__ = __doc__.replace(RULES_TABLE_MARK, rules_table())

__all__ = [
    "DEFAULT_MIN_RECORDS",
    "DRIFT_THRESHOLD",
    "REGISTRY",
    "RULES",
    "SPLITS",
    "Failure",
    "Rule",
    "ValidationOutcome",
    "_engine",
    "quiet_gx_logs",
    "reject_file",
    "rules_table",
    "validate_file",
]
