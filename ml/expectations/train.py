"""The ``turkey_train`` suite: the shared record rules plus the label rules."""

from __future__ import annotations

import logging

from ml.expectations import records
from ml.expectations.records import rule
from ml.validation.rules import MIN_CLASS_SHARE

log = logging.getLogger(__name__)


def expectations() -> list:
    """The train suite's GX expectations: the record rules plus the label rules."""
    import great_expectations as gx

    E = gx.expectations
    return records.expectations() + [
        E.ExpectColumnValuesToBeInSet(column="has_label", value_set=[True], **rule("label.required")),
        E.ExpectColumnValuesToBeInSet(column="label_ok", value_set=[True], **rule("label.valid")),
        E.ExpectColumnDistinctValuesToContainSet(column="label", value_set=[0, 1], **rule("label.both_classes")),
        E.ExpectColumnMeanToBeBetween(
            column="label",
            min_value=MIN_CLASS_SHARE,
            max_value=1 - MIN_CLASS_SHARE,
            **rule("label.balance", "the share of positives"),
        ),
    ]
