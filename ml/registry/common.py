"""The registry's names and small helpers shared by its modules: the version file list, the audit actions
that move the pointer, the lock and intent file names, version names and hashing."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import UTC, datetime

log = logging.getLogger(__name__)

#: The files every new version folder holds besides manifest.json (the single list: register copies these,
#: the manifest records their hashes). A version registered before a file was added here stays valid: its
#: completeness is judged by its own manifest's file list.
VERSION_FILES = ("model.keras", "metrics.json", "history.json", "curves.png", "submission.csv", "record_ids.json")
#: Checked for versions whose manifest predates per-file hashes.
LEGACY_REQUIRED = ("model.keras", "submission.csv")

#: Audit actions that move (or rewrite) champion.json.
POINTER_ACTIONS = ("promote", "rollback", "repair")
LOCK_NAME = ".registry.lock"
INTENT_NAME = ".promotion-intent.json"
REPAIR_HINT = "turkey models doctor --repair"


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_version(run_started_at: datetime | str, dag_id: str, run_id: str) -> str:
    """Deterministic per DAG run (so retries map to the same version), sortable by creation time."""
    if isinstance(run_started_at, str):
        run_started_at = datetime.fromisoformat(run_started_at.replace("Z", "+00:00"))
    if run_started_at.tzinfo is None:
        run_started_at = run_started_at.replace(tzinfo=UTC)
    stamp = run_started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha1(f"{dag_id}/{run_id}".encode()).hexdigest()[:8]
    return f"v{stamp}-{digest}"


def sha256_stream(fh) -> str:
    """Hex sha256 of an open binary file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path) -> str:
    """Hex sha256 of a local file, read in 1 MiB blocks."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def tmp_suffix() -> str:
    """A suffix for temporary names unique to this process and moment."""
    return f"tmp-{os.getpid()}-{time.monotonic_ns()}"


def env_float(name: str, default: float) -> float:
    """``$name`` as a float; ``default`` when unset or not a number."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def json_bytes(obj, indent: int | None = 2) -> bytes:
    """``obj`` as sorted-key JSON with a trailing newline, encoded (``indent=None``: one line)."""
    return (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode()
