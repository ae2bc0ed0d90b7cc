"""Where things live. Every location can be overridden by an environment variable.

- ``TURKEY_DATA_ROOT``: data root (default ``<repo>/data``). The landing folder is ``<root>/landing``;
  rejected inputs go to ``<root>/rejected``. Input paths given as DAG params are relative to this root
  and may not escape it.
- ``TURKEY_ARTIFACTS_ROOT``: artifacts root (default ``<repo>/artifacts``): run scratch space,
  validation reports, the model registry and the submissions.
"""

from __future__ import annotations

import os
from pathlib import Path

from ml.errors import TurkeyError

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    return Path(os.environ.get("TURKEY_DATA_ROOT", REPO_ROOT / "data")).resolve()


def landing_dir() -> Path:
    return data_root() / "landing"


def artifacts_root() -> Path:
    return Path(os.environ.get("TURKEY_ARTIFACTS_ROOT", REPO_ROOT / "artifacts")).resolve()


def resolve_input(relative: str, root: Path | None = None) -> Path:
    """Resolve a user-supplied input path against the data root; refuse paths that escape it."""
    root = (root or data_root()).resolve()
    if not relative or not str(relative).strip():
        raise TurkeyError("input path is empty")
    candidate = (root / relative).resolve()
    if candidate != root and root not in candidate.parents:
        raise TurkeyError(f"input path {relative!r} escapes the data root {root}; give a path inside it")
    return candidate


def safe_name(text: str) -> str:
    """A file-system-safe rendering of a run id or version."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))[:120]
