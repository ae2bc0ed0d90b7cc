"""The ``turkey_test`` suite: the shared record rules; a label is not expected (warning, ignored)."""

from __future__ import annotations

import logging

from ml.expectations import records
from ml.expectations.records import rule

log = logging.getLogger(__name__)


def expectations() -> list:
    """The test suite's GX expectations: the record rules plus ``label.absent``."""
    import great_expectations as gx

    E = gx.expectations
    return records.expectations() + [
        E.ExpectColumnValuesToBeInSet(column="has_label", value_set=[False], **rule("label.absent")),
    ]
