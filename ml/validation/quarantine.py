"""Quarantine: move a rejected file (and a copy of its report) to ``rejected/`` beside its folder."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from ml.errors import DataError
from ml.fsutil import TMP_PREFIX, environment_errors

log = logging.getLogger(__name__)


def _reserve(rejected: Path, name: str, stamp: str) -> Path:
    """Create an empty, fresh ``<stamp>[-n]-<name>`` in ``rejected`` atomically (O_EXCL); return its path."""
    n = 0
    while True:
        dest = rejected / (f"{stamp}-{name}" if n == 0 else f"{stamp}-{n}-{name}")
        try:
            os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return dest
        except FileExistsError:
            n += 1


def reject_file(path, report_dir=None) -> str:
    """Move ``path`` to ``<its folder>/../rejected/<UTC timestamp>-<name>`` (never deleting, never overwriting).

    The file is moved, never copied-and-kept: exactly one of the original and the rejected file exists
    afterwards. Within one filesystem this is a rename; across filesystems the copy is completed under a
    temporary name and renamed into place before the original is removed, and if the original cannot be
    removed (a read-only landing folder) the copy is deleted again. Disk-full/read-only/permission errors
    raise :class:`~ml.errors.EnvironmentFault` with the original in place and no copy left behind.
    A copy of ``report_dir`` (when given and present) goes beside it as ``<new name>.report/`` (best
    effort: a failure there is logged, the move stands). Returns the new path.
    """
    src = Path(path).absolute()
    if not src.is_file():
        raise DataError(src, "file.readable", "cannot reject: no such file")
    rejected = src.parent.parent / "rejected"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with environment_errors(rejected):
        rejected.mkdir(parents=True, exist_ok=True)
        dest = _reserve(rejected, src.name, stamp)  # then move onto our own placeholder
        moved = False
        try:
            try:
                os.replace(src, dest)
                moved = True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                tmp = dest.with_name(f"{TMP_PREFIX}{os.getpid()}-{dest.name}")
                try:
                    shutil.copy2(src, tmp)
                    os.replace(tmp, dest)
                finally:
                    if tmp.exists():
                        tmp.unlink()
                os.unlink(src)  # only now is the copy complete; on failure the copy goes (below)
                moved = True
        finally:
            if not moved:
                dest.unlink(missing_ok=True)
    if report_dir is not None and Path(report_dir).is_dir():
        target = dest.with_name(dest.name + ".report")
        try:
            shutil.copytree(report_dir, target, dirs_exist_ok=False)
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            log.warning("could not copy the report %s beside %s: %s", report_dir, dest, exc)
    return str(dest)
