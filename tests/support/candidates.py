"""The one builder of fake candidate folders for registry, fault and console tests (a complete set of
version files, small and distinct per tag) and of registries seeded with them. Nothing here trains a model."""

from __future__ import annotations

import json
from pathlib import Path

from ml.registry import VERSION_FILES, Registry

DEFAULT_METRICS = {"val_accuracy": 0.9, "val_auc": 0.95}


def make_candidate(parent: Path, tag: str, rows: int = 20, metrics: dict | None = None, files=None) -> Path:
    """A complete candidate folder ``parent/cand-<tag>`` whose every file (and submission) is unique to ``tag``.

    Each of :data:`ml.registry.VERSION_FILES` holds ``<tag>:<name>``; ``submission.csv`` has ``rows`` rows
    with ids ``<tag>-<i>``; ``metrics.json`` holds ``metrics`` (default :data:`DEFAULT_METRICS` plus the tag).
    ``files`` (``{name: str or bytes}``) replaces the content of the files it names.
    """
    d = Path(parent) / f"cand-{tag}"
    d.mkdir(parents=True, exist_ok=True)
    content: dict[str, str | bytes] = {f: f"{tag}:{f}\n" for f in VERSION_FILES}
    content["submission.csv"] = "vid_id,is_turkey\n" + "".join(f"{tag}-{i},0.{i:04d}\n" for i in range(rows))
    content["metrics.json"] = json.dumps(metrics if metrics is not None else {**DEFAULT_METRICS, "tag": tag})
    content.update(files or {})
    for name, data in content.items():
        (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return d


def seeded_registry(tmp_path: Path, versions=("v1", "v2", "v3"), champion: str | None = "v1") -> Registry:
    """A registry at ``tmp_path/reg`` with ``versions`` registered (run ids ``run-<v>``) and ``champion``
    promoted (none when None)."""
    reg = Registry(Path(tmp_path) / "reg")
    for i, v in enumerate(versions):
        reg.register(v, make_candidate(Path(tmp_path) / "cands", v, rows=10 + i), {"run_id": f"run-{v}"})
    if champion:
        reg.promote(champion, reason="initial champion", run_id=f"run-{champion}")
    return reg
