"""Cross-file checks of a test file against the train file: shared vid_ids and frame-statistics drift."""

from __future__ import annotations

import logging

import numpy as np

from ml.data import Records
from ml.validation.outcome import ValidationOutcome, format_records

log = logging.getLogger(__name__)

DRIFT_THRESHOLD = 0.5  # in units of train's sd of frame_mean


def cross_file_warnings(records: Records, reference: ValidationOutcome, threshold: float) -> list[str]:
    """Warnings comparing a test file with the train file (rules ``overlap.vid_id`` and ``drift.frame_mean``)."""
    out = []
    ref = reference.records
    if ref is None or not len(ref) or not len(records):
        return out
    test_ids = records.summary["vid_id"]
    ok = records.summary["vid_id_ok"].astype(bool)
    # a set lookup, not np.isin: on object (string) arrays np.isin compares every pair, 393 s at 100x size
    train_ids = set(ref.summary["vid_id"][ref.summary["vid_id_ok"].astype(bool)].tolist())
    shared = np.fromiter((i in train_ids for i in test_ids.tolist()), dtype=bool, count=len(test_ids)) & ok
    if shared.any():
        recs = [(int(i), str(test_ids[i])) for i in np.flatnonzero(shared)]
        out.append(
            f"overlap.vid_id: {len(recs)} test record(s) share a vid_id with the train file "
            f"{reference.path} (possible leakage) {format_records(recs)}"
        )
    a = ref.summary["frame_mean"]
    b = records.summary["frame_mean"]
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) >= 2 and len(b) >= 1:
        sd = float(a.std(ddof=1))
        shift = abs(float(b.mean()) - float(a.mean()))
        score = shift / sd if sd > 0 else (0.0 if shift == 0 else float("inf"))
        if score > threshold:
            out.append(
                f"drift.frame_mean: mean frame value {b.mean():.2f} (test) vs {a.mean():.2f} (train) differs by "
                f"{score:.2f} train sd (threshold {threshold:g})"
            )
    return out
