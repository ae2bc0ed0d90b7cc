"""Atomic local file output: write to a temporary name beside the target, then rename into place."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``path`` (atomic on one filesystem).

    A reader sees the old file or the new one, never a part. On error the temporary file is removed and
    ``path`` is left untouched. The temporary name keeps ``path``'s suffix (Keras and matplotlib pick
    the format from it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{time.monotonic_ns()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_default(o):
    if hasattr(o, "item") and getattr(o, "ndim", 1) == 0:  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):  # numpy arrays
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(obj, path, sort_keys: bool = True) -> str:
    """A JSON file (indented, numpy values converted) written atomically; returns its path."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys, default=_json_default) + "\n", encoding="utf-8")
    return str(path)
