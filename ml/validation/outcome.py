"""What a validation returns: :class:`Failure` and :class:`ValidationOutcome`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ml.data import Records
from ml.errors import DataError

log = logging.getLogger(__name__)

SHOW_RECORDS = 10  # records named in a message


@dataclass
class Failure:
    """A broken failure rule: its name, the one-line message and ALL offending ``(index, vid_id)`` records."""

    rule: str
    message: str
    records: list[tuple[int, str]] = field(default_factory=list)  # (record index, vid_id): ALL offending


@dataclass
class ValidationOutcome:
    """The verdict on one file: parsed records (None if unparsable), failures, warnings and report paths."""

    path: str
    split: str
    records: Records | None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report_json: str | None = None
    report_html: str | None = None

    @property
    def ok(self) -> bool:
        """True when no failure rule is broken (warnings do not count)."""
        return not self.failures

    def raise_for_failures(self) -> None:
        """Raise :class:`DataError` for the first failure (the message counts the other broken rules)."""
        if not self.failures:
            return
        first, others = self.failures[0], self.failures[1:]
        message = first.message
        if others:
            names = ", ".join(f.rule for f in others)
            message += f" ({len(others)} other rule(s) also failed: {names})"
        raise DataError(self.path, first.rule, message, first.records)


def format_records(records, limit: int = SHOW_RECORDS) -> str:
    """``[records: #3 (vid_id='x'), ... and N more]`` (as :meth:`DataError.describe`); "" for none."""
    shown = ", ".join(f"#{i}" + (f" (vid_id={vid!r})" if vid is not None else "") for i, vid in records[:limit])
    more = f" and {len(records) - limit} more" if len(records) > limit else ""
    return f"[records: {shown}{more}]" if records else ""
