"""Deployment settings: where things live and how long to wait, read from ``TURKEY_*`` environment variables.

Every setting is one field of :class:`Settings`, read by one parser (:meth:`Settings.from_env`): the
variable is ``TURKEY_`` + the field name in capitals; unset or empty means the default; a value that does
not parse, or is below the field's minimum, is a :class:`~ml.errors.TurkeyError` naming the variable.
Settings are read when asked for (:func:`settings`), never cached, so a process may change its
environment between calls (tests do).

A run's settings (inputs, gates, recipe, publishing) are something else: :class:`ml.config.RunConfig`.
This module also holds the path rules every input goes through (:func:`resolve_input`, :func:`safe_name`)
and the environment defaults for the libraries a run imports (:func:`set_library_environment`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from ml.errors import TurkeyError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "TURKEY_"

#: Environment defaults for the libraries a run imports (a value already set is kept): no Great
#: Expectations usage analytics, no TensorFlow C++ start-up chatter.
LIBRARY_ENVIRONMENT = {"GX_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _setting(default, help: str, minimum: float | None = None):
    return field(default=default, metadata={"help": help, "minimum": minimum})


@dataclass(frozen=True)
class Settings:
    """The ``TURKEY_*`` environment, parsed. Paths are absolute."""

    data_root: Path = _setting(REPO_ROOT / "data", "inputs: <root>/landing, rejected inputs: <root>/rejected")
    artifacts_root: Path = _setting(REPO_ROOT / "artifacts", "run folders, validation reports and the registry")
    registry_url: str | None = _setting(None, "the registry at any fsspec URL (default: the artifacts root)")
    keep_reports: int = _setting(20, "run folders (validation reports, failed runs' files) kept", 1)
    report_max_age_days: float = _setting(30.0, "run folders older than this are removed (0: no limit)", 0)
    registry_lock_timeout_s: float = _setting(120.0, "longest wait for the registry lock (then RegistryBusy)", 0)
    registry_lock_stale_s: float = _setting(600.0, "an object-store lock older than this is broken", 0)
    git_commit: str | None = _setting(None, "recorded in manifests where the code is not a git checkout")
    mlflow_experiment: str = _setting("turkey", "MLflow mirror: experiments <name>-training and <name>-scoring")
    mlflow_model_name: str = _setting("turkey_classifier", "MLflow mirror: the registered model (alias champion)")
    mlflow_timeout_s: float = _setting(120.0, "MLflow mirror: the longest a catch-up may take (then it lags)", 1)

    @classmethod
    def from_env(cls, environ=None) -> Settings:
        """The settings from ``environ`` (default ``os.environ``)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            name = PREFIX + f.name.upper()
            raw = str(environ.get(name, "")).strip()
            if raw:
                values[f.name] = _parse(name, raw, f)
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """``(variable, default, help)`` of every setting, for documentation and ``--help``."""
        return [(PREFIX + f.name.upper(), str(f.default), f.metadata["help"]) for f in dataclasses.fields(cls)]


def _parse(name: str, raw: str, f: dataclasses.Field):
    kind = {"Path": Path, "int": int, "float": float}.get(str(f.type).split(" ")[0], str)
    what = {int: "a whole number", float: "a number", Path: "a path", str: "text"}[kind]
    try:
        value = kind(raw)
    except ValueError:
        raise TurkeyError(f"{name}={raw!r} is not {what}; set it to {what} or unset it (default {f.default})") from None
    minimum = f.metadata.get("minimum")
    if minimum is not None and not value >= minimum:  # also refuses NaN
        raise TurkeyError(f"{name}={raw!r} is below {minimum}; set it to at least {minimum} or unset it "
                          f"(default {f.default})")
    if kind is Path:
        if "\x00" in raw:
            raise TurkeyError(f"{name} contains a NUL byte; give a plain path")
        value = value.resolve()
    return value


def settings() -> Settings:
    """The current environment's :class:`Settings`."""
    return Settings.from_env()


def landing_dir() -> Path:
    """Where new input files land: ``<data root>/landing``."""
    return settings().data_root / "landing"


def run_dir(run_id: str) -> Path:
    """A DAG run's scratch folder on the artifacts root (npz arrays, candidate, validation reports)."""
    return settings().artifacts_root / "runs" / safe_name(run_id)


def set_library_environment() -> None:
    """Set the :data:`LIBRARY_ENVIRONMENT` defaults. Call it when a run starts (the CLI's ``main``, a task
    body), before Great Expectations or TensorFlow is imported; never at import time."""
    for name, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def _refuse_unsafe(text: str, what: str) -> None:
    if "\x00" in text:
        raise TurkeyError(f"{what} {text!r} contains a NUL byte; give a plain path")


def resolve_input(relative: str, root: Path | None = None) -> Path:
    """Resolve a user-supplied input path against the data root.

    Refuses (``TurkeyError``, one line) an empty path, a NUL byte, a ``..`` component and anything that
    resolves outside the root (also through a symlink).
    """
    root = (root or settings().data_root).resolve()
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
