"""Record rules shared by the train and test suites.

Rule names, kinds (failure -> severity ``critical``, warning -> ``warning``) and texts come from the rule
registry :mod:`ml.validation.rules`; an expectation adds only a note on what it checks when several share
one rule.
"""

from __future__ import annotations

import logging

from ml.data import MAXLEN, N_FEATURES
from ml.validation.rules import BY_NAME, MAX_DURATION_S, VALUE_RANGE

log = logging.getLogger(__name__)


def rule(name: str, note: str = "") -> dict:
    """Keyword arguments tying an expectation to the registry rule ``name`` (shown in Data Docs too)."""
    registered = BY_NAME[name]  # KeyError: every expectation belongs to a registered rule
    severity = "warning" if registered.kind == "warning" else "critical"
    description = f"{name}: {registered.text}" + (f" ({note})" if note else "")
    return {"meta": {"rule": name}, "severity": severity, "description": description}


def expectations() -> list:
    """The GX expectations of the record rules (both suites start with these)."""
    import great_expectations as gx

    E = gx.expectations
    low, high = VALUE_RANGE
    return [
        E.ExpectColumnValuesToBeInSet(column="missing_fields", value_set=[""], **rule("fields.required")),
        E.ExpectColumnValuesToBeInSet(column="vid_id_ok", value_set=[True], **rule("vid_id.valid")),
        E.ExpectColumnValuesToBeUnique(column="vid_id", **rule("vid_id.unique")),
        E.ExpectColumnValuesToBeInSet(
            column="start_ok", value_set=[True], **rule("time.numeric", "start_time_seconds_youtube_clip")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="end_ok", value_set=[True], **rule("time.numeric", "end_time_seconds_youtube_clip")
        ),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end",
            column_B="start",
            or_equal=False,
            ignore_row_if="either_value_is_missing",
            **rule("time.order"),
        ),
        E.ExpectColumnValuesToBeBetween(column="duration", max_value=MAX_DURATION_S, **rule("time.duration")),
        E.ExpectColumnValuesToBeInSet(column="emb_is_list", value_set=[True], **rule("embedding.list")),
        E.ExpectColumnValuesToBeBetween(column="n_frames", min_value=1, max_value=MAXLEN, **rule("embedding.frames")),
        E.ExpectColumnValuesToBeBetween(
            column="row_len_min",
            min_value=N_FEATURES,
            max_value=N_FEATURES,
            **rule("embedding.row_length", "shortest frame"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="row_len_max",
            min_value=N_FEATURES,
            max_value=N_FEATURES,
            **rule("embedding.row_length", "longest frame"),
        ),
        E.ExpectColumnValuesToBeBetween(column="n_bad_values", min_value=0, max_value=0, **rule("embedding.value_type")),
        E.ExpectColumnValuesToBeBetween(
            column="value_min", min_value=low, **rule("embedding.value_range", "smallest value")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="value_max", max_value=high, **rule("embedding.value_range", "largest value")
        ),
        E.ExpectTableRowCountToBeBetween(min_value={"$PARAMETER": "min_records"}, **rule("records.min_count")),
        E.ExpectColumnValuesToBeInSet(column="extra_fields", value_set=[""], **rule("fields.extra")),
    ]
