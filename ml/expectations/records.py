"""Record rules shared by the train and test suites (see ``ml/validation.py`` for the rule table)."""

from __future__ import annotations

from ml.data import MAXLEN, N_FEATURES

MAX_DURATION_S = 10.0


def rule(name: str, description: str, severity: str = "critical") -> dict:
    """Keyword arguments tying an expectation to a rule (the rule name shows in Data Docs too)."""
    return {"meta": {"rule": name}, "severity": severity, "description": f"{name}: {description}"}


def expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return [
        E.ExpectColumnValuesToBeInSet(
            column="missing_fields",
            value_set=[""],
            **rule("fields.required", "Every record has vid_id, start/end times and audio_embedding"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="vid_id_ok", value_set=[True], **rule("vid_id.valid", "vid_id is a non-empty string")
        ),
        E.ExpectColumnValuesToBeUnique(column="vid_id", **rule("vid_id.unique", "vid_id is unique within the file")),
        E.ExpectColumnValuesToBeInSet(
            column="start_ok",
            value_set=[True],
            **rule("time.numeric", "start_time_seconds_youtube_clip is a finite number"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="end_ok",
            value_set=[True],
            **rule("time.numeric", "end_time_seconds_youtube_clip is a finite number"),
        ),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end",
            column_B="start",
            or_equal=False,
            ignore_row_if="either_value_is_missing",
            **rule("time.order", "The clip ends after it starts"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="duration",
            max_value=MAX_DURATION_S,
            **rule("time.duration", f"The clip lasts at most {MAX_DURATION_S:g} s"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="emb_is_list", value_set=[True], **rule("embedding.list", "audio_embedding is a list")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="n_frames",
            min_value=1,
            max_value=MAXLEN,
            **rule("embedding.frames", f"audio_embedding has 1 to {MAXLEN} frames"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="row_len_min",
            min_value=N_FEATURES,
            max_value=N_FEATURES,
            **rule("embedding.row_length", f"Every frame is a list of exactly {N_FEATURES} values (shortest frame)"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="row_len_max",
            min_value=N_FEATURES,
            max_value=N_FEATURES,
            **rule("embedding.row_length", f"Every frame is a list of exactly {N_FEATURES} values (longest frame)"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="n_bad_values",
            min_value=0,
            max_value=0,
            **rule("embedding.value_type", "Every value is an integer (no floats, strings, booleans or nulls)"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="value_min", min_value=0, **rule("embedding.value_range", "Every value is at least 0")
        ),
        E.ExpectColumnValuesToBeBetween(
            column="value_max", max_value=255, **rule("embedding.value_range", "Every value is at most 255")
        ),
        E.ExpectTableRowCountToBeBetween(
            min_value={"$PARAMETER": "min_records"},
            **rule("records.min_count", "The file holds at least min_records records"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="extra_fields",
            value_set=[""],
            **rule("fields.extra", "No unknown fields (warning only: unknown fields are ignored)", "warning"),
        ),
    ]
