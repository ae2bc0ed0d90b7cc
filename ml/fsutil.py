"""Atomic local file output: write to a temporary name beside the target, then rename into place.

Environmental failures (disk full, read-only filesystem, permission denied) while writing become
:class:`ml.errors.EnvironmentFault`: one line naming the path and what to do, never a raw ``OSError``
traceback, and nothing half-written remains.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml.errors import EnvironmentFault

log = logging.getLogger(__name__)

# errno -> (short reason, what an operator can do). Anything else stays an OSError (a bug or a transient).
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: ("disk full", "free space on that filesystem, then clear the task"),
    errno.EDQUOT: ("disk quota exceeded", "raise the quota or free space, then clear the task"),
    errno.EROFS: ("read-only file system", "mount it read-write, then clear the task"),
    errno.EACCES: ("permission denied", "give the pipeline's user write access, then clear the task"),
    errno.EPERM: ("operation not permitted", "give the pipeline's user write access, then clear the task"),
}

TMP_PREFIX = ".tmp-"  # every temporary file written here starts with this (cleanup finds orphans by it)


def environment_fault(exc: BaseException, path) -> EnvironmentFault | None:
    """The :class:`EnvironmentFault` for ``exc`` if it is a disk-full/read-only/permission error, else None."""
    if isinstance(exc, EnvironmentFault):
        return exc
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__, OSError):
        code = exc.__cause__.errno
    if code is None and isinstance(exc.__context__, OSError):
        code = exc.__context__.errno
    if code in ENVIRONMENT_ERRNOS:
        reason, hint = ENVIRONMENT_ERRNOS[code]
        return EnvironmentFault(path, reason, hint)  # the target, not a temporary name or a copy's source
    return None


def as_environment_fault(exc: OSError) -> EnvironmentFault:
    """The one-line :class:`EnvironmentFault` for a raw ``OSError`` that escaped to a top level (the CLI, an
    Airflow task); any other ``OSError`` is re-raised unchanged."""
    fault = environment_fault(exc, exc.filename or "a file")
    if fault is None:
        raise exc
    return fault


@contextmanager
def environment_errors(path) -> Iterator[None]:
    """Re-raise disk-full / read-only / permission errors inside the block as :class:`EnvironmentFault`."""
    try:
        yield
    except Exception as exc:
        fault = environment_fault(exc, path)
        if fault is None or fault is exc:
            raise
        raise fault from exc


@contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``path`` (atomic on one filesystem).

    A reader sees the old file or the new one, never a part. On error the temporary file is removed and
    ``path`` is left untouched; disk-full, read-only and permission errors become
    :class:`~ml.errors.EnvironmentFault`. The temporary name keeps ``path``'s suffix (Keras and matplotlib
    pick the format from it).
    """
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{path.name}")
    try:
        with environment_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            os.replace(tmp, path)
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # e.g. read-only: nothing could have been written there either
            pass


def fsync_dir(path) -> None:
    """Make a rename inside directory ``path`` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _json_default(o):
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):  # numpy arrays
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path):
    """The JSON document in the local file ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(obj, path, sort_keys: bool = True) -> str:
    """A JSON file (indented, numpy values converted) written atomically; returns its path."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys, default=_json_default) + "\n", encoding="utf-8")
    return str(path)
