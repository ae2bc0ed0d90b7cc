"""Where things live. Every location can be overridden by an environment variable.

- ``TURKEY_DATA_ROOT``: data root (default ``<repo>/data``). The landing folder is ``<root>/landing``;
  rejected inputs go to ``<root>/rejected``. Input paths given as DAG params are relative to this root
  and may not escape it.
- ``TURKEY_ARTIFACTS_ROOT``: artifacts root (default ``<repo>/artifacts``): run scratch space,
  validation reports, the model registry and the submissions.
- ``TURKEY_KEEP_REPORTS`` / ``TURKEY_REPORT_MAX_AGE_DAYS``: retention of run folders (see
  :mod:`ml.retention`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ml.errors import TurkeyError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The data root: ``TURKEY_DATA_ROOT``, else ``<repo>/data`` (absolute)."""
    return Path(os.environ.get("TURKEY_DATA_ROOT", REPO_ROOT / "data")).resolve()


def landing_dir() -> Path:
    """Where new input files land: ``<data root>/landing``."""
    return data_root() / "landing"


def artifacts_root() -> Path:
    """The artifacts root: ``TURKEY_ARTIFACTS_ROOT``, else ``<repo>/artifacts`` (absolute)."""
    return Path(os.environ.get("TURKEY_ARTIFACTS_ROOT", REPO_ROOT / "artifacts")).resolve()


def _refuse_unsafe(text: str, what: str) -> None:
    if "\x00" in text:
        raise TurkeyError(f"{what} {text!r} contains a NUL byte; give a plain path")


def _env_number(name: str, default: str, kind: type, what: str):
    """``kind(os.environ[name])`` (``default`` when unset or empty); a TurkeyError naming the variable when
    the value is not a number."""
    raw = os.environ.get(name, "").strip() or default
    try:
        value = kind(raw)
    except ValueError:
        raise TurkeyError(f"{name}={raw!r} is not {what}; set it to {what} or unset it (default {default})") from None
    if value < 0 or value != value:  # negative or NaN
        raise TurkeyError(f"{name}={raw!r} is not {what}; set it to {what} or unset it (default {default})")
    return value


def keep_reports() -> int:
    """``TURKEY_KEEP_REPORTS`` (default 20): run folders (validation reports, a failed run's files) kept."""
    return max(1, _env_number("TURKEY_KEEP_REPORTS", "20", int, "a whole number of run folders"))


def report_max_age_days() -> float:
    """``TURKEY_REPORT_MAX_AGE_DAYS`` (default 30; 0 = no age limit): older run folders are removed."""
    return _env_number("TURKEY_REPORT_MAX_AGE_DAYS", "30", float, "a number of days")


def run_dir(run_id: str) -> Path:
    """A DAG run's scratch folder on the artifacts root (npz arrays, candidate, validation reports)."""
    return artifacts_root() / "runs" / safe_name(run_id)


def resolve_input(relative: str, root: Path | None = None) -> Path:
    """Resolve a user-supplied input path against the data root.

    Refuses (``TurkeyError``, one line) an empty path, a NUL byte, a ``..`` component and anything that
    resolves outside the root (also through a symlink).
    """
    root = (root or data_root()).resolve()
    if relative is None or not str(relative).strip():
        raise TurkeyError("input path is empty")
    relative = str(relative)
    _refuse_unsafe(relative, "input path")
    if ".." in Path(relative).parts:
        raise TurkeyError(f"input path {relative!r} has a '..' component; give a path inside the data root {root}")
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise TurkeyError(f"input path {relative!r} escapes the data root {root}; give a path inside it")
    return candidate


def safe_name(text: str) -> str:
    """A file-system-safe rendering of a run id or version: one path component, never ``.`` or ``..``.

    Characters other than letters, digits and ``-_.`` become ``_`` (so ``/`` can never split it); a NUL
    byte or a name that would be empty, ``.`` or ``..`` is refused with a ``TurkeyError``.
    """
    text = str(text)
    _refuse_unsafe(text, "name")
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120]
    if name in ("", ".", ".."):
        raise TurkeyError(f"{text!r} is not a usable name (empty, '.' or '..')")
    return name
