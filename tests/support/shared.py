"""Expensive states built once per test session, also when pytest-xdist runs the suite in several worker
processes: the first worker to need a state builds it under a lock, the others wait and use it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path


def session_root(tmp_path_factory) -> Path:
    """The temporary folder every worker of this session shares (each xdist worker has its own basetemp
    below it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``session_root/name``, filled by ``build(folder)`` exactly once per session. Treat it as read-only."""
    root = session_root(tmp_path_factory)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build(folder)
            done.touch()
    return folder
