"""Error types shared by the library. Every user-facing failure is a TurkeyError with a one-line reason."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


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
        """The one-line message: file, rule, reason and up to 10 offending records (``#index (vid_id=...)``)."""
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


class EnvironmentFault(TurkeyError):
    """The machine, not the data, stopped the work: disk full, read-only filesystem, permission denied.

    Retrying the same task cannot help until an operator frees space or fixes the mount/permissions, so
    tasks fail at once (no retries) with this one line. Whatever was being written is removed.
    """

    def __init__(self, path, reason: str, hint: str):
        self.path = str(path)
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason} while writing {self.path}: {hint}")


class RegistryError(TurkeyError):
    """The model registry refused an operation (unknown version, busy lock, changed champion)."""


class RegistryBusy(RegistryError):
    """Another promotion held the registry lock for longer than the wait allowed. Transient: unlike other
    TurkeyErrors, Airflow tasks let it through as an ordinary exception, so the task is retried."""


class RegistryDamaged(RegistryError):
    """A registry file is unreadable or points at something missing. Names the file and the repair."""

    def __init__(self, path, problem: str, repair: str = "turkey models doctor --repair"):
        self.path = str(path)
        self.problem = problem
        self.repair = repair
        super().__init__(f"registry damaged: {self.path}: {problem}; run `{repair}`")
