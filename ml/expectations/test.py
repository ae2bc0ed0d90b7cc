"""The ``turkey_test`` suite: the shared record rules; a label is not expected (warning, ignored)."""

from __future__ import annotations

from ml.expectations import records
from ml.expectations.records import rule


def expectations() -> list:
    import great_expectations as gx

    E = gx.expectations
    return records.expectations() + [
        E.ExpectColumnValuesToBeInSet(
            column="has_label",
            value_set=[False],
            **rule("label.absent", "No record has is_turkey (warning only: a test label is ignored)", "warning"),
        ),
    ]
