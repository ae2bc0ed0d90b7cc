"""The lineage's AUC over time: every version that was ever champion, scored on one common record set.

Comparing the AUCs each version reported at its own promotion would compare different records. Instead,
after each promotion of the training DAG, :func:`measure` scores every version that was ever champion
(in the order they first became champion) on that run's validation records that *none* of them trained
on, and :func:`write` stores the curve as ``lineage.json`` at the registry root; the console's Models page
plots it. Scoring uses the NumPy forward pass (:mod:`ml.scoring.forward`), so it needs no TensorFlow.
"""

from __future__ import annotations

import logging

import numpy as np

from ml.registry import POINTER_ACTIONS, now_iso
from ml.registry.storage import json_bytes

log = logging.getLogger(__name__)

LINEAGE_FILE = "lineage.json"


def champions(registry) -> list[tuple[str, str]]:
    """``(version, first promoted at)`` of every version that was ever champion, in that order."""
    seen: dict[str, str] = {}
    for entry in registry.audit():
        if entry.get("action") in POINTER_ACTIONS and entry.get("version") not in seen:
            seen[entry["version"]] = entry.get("at")
    return list(seen.items())


def measure(registry, ids, x, y, work_dir) -> dict:
    """Each champion's AUC on the records of ``ids``/``x``/``y`` (padded frames, labels) that none of the
    champions trained on: ``{"n", "n_pos", "points": [{version, promoted_at, auc}], "computed_at"}``."""
    from ml.evaluate import binary_metrics
    from ml.manifest import trained_ids
    from ml.scoring.predict import load_model

    versions = [(v, at) for v, at in champions(registry) if v in registry.versions()]
    keep = np.ones(len(ids), dtype=bool)
    for version, _ in versions:
        trained = trained_ids(registry, version)
        if trained is None:  # registered before record ids: its training records are unknown
            continue
        keep &= np.array([str(i) not in trained for i in ids], dtype=bool)
    x, y = np.asarray(x)[keep], np.asarray(y)[keep].astype(int)
    points = []
    for version, at in versions:
        auc = None
        if len(np.unique(y)) == 2:
            probs = load_model(registry.fetch_model(version, work_dir)).predict(x).reshape(-1)
            auc = round(binary_metrics(y, probs)["roc_auc"], 5)
        points.append({"version": version, "promoted_at": at, "auc": auc})
    return {"n": int(keep.sum()), "n_pos": int(y.sum()), "points": points, "computed_at": now_iso()}


def write(registry, curve: dict) -> None:
    """Store the curve as ``lineage.json`` (whole or not at all)."""
    registry.storage.write_bytes(registry.storage.path(LINEAGE_FILE), json_bytes(curve))


def read(registry) -> dict | None:
    """The stored curve, or None."""
    path = registry.storage.path(LINEAGE_FILE)
    return registry.storage.read_json(path) if registry.storage.isfile(path) else None
