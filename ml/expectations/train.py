"""The ``turkey_train`` suite: the shared record rules plus the label rules."""

from __future__ import annotations

from ml.expectations import records
from ml.expectations.records import rule

MIN_CLASS_SHARE = 0.05  # each class must be at least 5% of the labelled records


def expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return records.expectations() + [
        E.ExpectColumnValuesToBeInSet(
            column="has_label", value_set=[True], **rule("label.required", "Every record has is_turkey")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="label_ok", value_set=[True], **rule("label.valid", "is_turkey is the integer 0 or 1")
        ),
        E.ExpectColumnDistinctValuesToContainSet(
            column="label", value_set=[0, 1], **rule("label.both_classes", "Both classes occur")
        ),
        E.ExpectColumnMeanToBeBetween(
            column="label",
            min_value=MIN_CLASS_SHARE,
            max_value=1 - MIN_CLASS_SHARE,
            **rule(
                "label.balance",
                f"Each class is at least {MIN_CLASS_SHARE:.0%} of the labelled records (share of positives)",
            ),
        ),
    ]
