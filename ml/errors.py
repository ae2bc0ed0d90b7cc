"""Error types shared by the library. Every user-facing failure is a TurkeyError with a one-line reason."""

from __future__ import annotations


class TurkeyError(Exception):
    """Base class: a failure the CLI reports as one readable line (exit 1), never a traceback."""


class DataError(TurkeyError):
    """Input data breaks a rule. Names the file, the rule and (where known) the offending records."""

    def __init__(self, file, rule: str, message: str, records: list[tuple[int, str | None]] | None = None):
        self.file = str(file)
        self.rule = rule
        self.message = message
        self.records = list(records or [])
        super().__init__(self.describe())

    def describe(self) -> str:
        text = f"{self.file}: rule '{self.rule}' broken: {self.message}"
        if self.records:
            shown = ", ".join(
                f"#{i}" + (f" (vid_id={vid!r})" if vid is not None else "") for i, vid in self.records[:10]
            )
            more = f" and {len(self.records) - 10} more" if len(self.records) > 10 else ""
            text += f" [records: {shown}{more}]"
        return text


class GateError(TurkeyError):
    """A quality gate refused the candidate (e.g. validation accuracy below the threshold)."""
