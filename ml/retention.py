"""Retention of run folders (``<artifacts>/runs/<run id>/``: validation reports, a failed run's files).

Policy (run by the ``cleanup`` task after each successful run): keep the newest ``keep`` run folders
(``TURKEY_KEEP_REPORTS``, default 20) and, among them, only those younger than ``max_age_days``
(``TURKEY_REPORT_MAX_AGE_DAYS``, default 30; 0 = no age limit); the folder of the run doing the cleanup
is always kept. Temporary files left by interrupted atomic writes (``.tmp-*``) older than an hour are
removed too. Registry orphans are removed by :func:`ml.registry.doctor.remove_orphans`.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from ml.fsutil import TMP_PREFIX

log = logging.getLogger(__name__)


def size_of(path: Path) -> int:
    """Bytes in a file, or in the regular files of a folder tree (symlinks not followed)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


#: What a successful run's folder no longer needs once its version is registered.
INTERMEDIATES = ("*.npz", "candidate", "champion")


def remove_intermediates(run_folder) -> int:
    """Remove a finished run's :data:`INTERMEDIATES` (arrays, the candidate folder the registry now holds,
    a downloaded champion); the validation report stays. Returns the bytes freed."""
    run_folder = Path(run_folder)
    freed = 0
    for pattern in INTERMEDIATES:
        for path in sorted(run_folder.glob(pattern)):
            freed += size_of(path)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    log.info("removed %.1f MiB of intermediates from %s", freed / 2**20, run_folder)
    return freed


def prune_runs(runs_dir, keep: int, max_age_days: float, protect=(), now: float | None = None) -> dict:
    """Remove run folders beyond the newest ``keep`` or older than ``max_age_days`` (by modification
    time), never one named in ``protect``. Returns ``{"removed": [paths], "freed_bytes": n}``."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return {"removed": [], "freed_bytes": 0}
    now = time.time() if now is None else now
    protect = {Path(p).resolve() for p in protect}
    folders = sorted((p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    removed, freed = [], 0
    for i, folder in enumerate(folders):
        if folder.resolve() in protect:
            continue
        too_many = i >= keep
        too_old = max_age_days > 0 and now - folder.stat().st_mtime > max_age_days * 86400
        if too_many or too_old:
            freed += size_of(folder)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    if removed:
        log.info("retention: removed %d run folder(s) (%.1f MiB) from %s", len(removed), freed / 2**20, runs_dir)
    return {"removed": removed, "freed_bytes": freed}


def remove_temp_files(root, min_age_s: float = 3600.0, now: float | None = None) -> list[str]:
    """Remove ``.tmp-*`` files/folders (left by killed atomic writers) under ``root`` older than ``min_age_s``."""
    root = Path(root)
    now = time.time() if now is None else now
    out = []
    if not root.is_dir():
        return out
    for p in list(root.rglob(f"{TMP_PREFIX}*")):
        try:
            if now - p.lstat().st_mtime < min_age_s:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            out.append(str(p))
        except FileNotFoundError:
            continue
    return out
