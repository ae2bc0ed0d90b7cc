"""Repeatable split and padding: the step between validation and training.

A record's role (training or validation) comes from its content identity, not from the file's record
order or a run seed: ``sha256(SPLIT_SALT + ":" + vid_id)`` read as a number ``u`` in [0, 1), and a
record is a validation record when ``u < val_fraction``. So

- a record keeps its role when records are added, removed or reordered, and across seeds (the ``seed``
  param controls weights and shuffling only);
- all clips of one video (same ``vid_id``) share a role: no video is in both training and validation;
- raising ``val_fraction`` only moves records from training to validation, never back;
- stratification is by construction rather than by sorting: the threshold ignores the label, so each
  class sends ~``val_fraction`` of its records to validation (binomial spread, about ±1.4 points for a
  class of 1,000 records). Exact per-class proportions are impossible without letting a new record move
  an old one. A class with no validation record or no training record is refused with a
  :class:`~ml.errors.TurkeyError` (only happens on tiny data), never "fixed" by moving records.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from ml.data import MAXLEN, Records, pad_frames
from ml.errors import TurkeyError

log = logging.getLogger(__name__)

#: Changing the salt reshuffles every record's role: only do it together with a new model lineage.
SPLIT_SALT = "turkey-split-v1"
SPLIT_METHOD = "sha256(salt:vid_id) < val_fraction"


def split_spec(val_fraction: float) -> dict:
    """How roles were assigned (stored with each version, so a split can be re-derived)."""
    return {"method": SPLIT_METHOD, "salt": SPLIT_SALT, "val_fraction": float(val_fraction), "id_field": "vid_id"}


def role_scores(ids, salt: str = SPLIT_SALT) -> np.ndarray:
    """Per record, a number in [0, 1) that depends only on ``salt`` and the record's id."""
    out = np.empty(len(ids), dtype=np.float64)
    for i, vid in enumerate(ids):
        digest = hashlib.sha256(f"{salt}:{vid}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


def split_roles(ids, labels, val_fraction: float = 0.25, source: str = "training data"):
    """Indices ``(train, val)`` (ascending) by :func:`role_scores`; both classes must have both roles.

    Raises :class:`~ml.errors.TurkeyError` naming ``source`` when ``val_fraction`` is outside (0, 1) or
    a class would have no validation (or no training) record.
    """
    if not 0.0 < val_fraction < 1.0:
        raise TurkeyError(f"{source}: val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    labels = np.asarray(labels)
    is_val = role_scores(ids) < val_fraction
    for cls in (0, 1):
        in_class = labels == cls
        n, n_val = int(in_class.sum()), int((in_class & is_val).sum())
        if n_val == 0 or n_val == n:
            missing = "validation" if n_val == 0 else "training"
            raise TurkeyError(
                f"{source}: class is_turkey={cls} has {n} record(s) and none of them falls in the {missing} "
                f"share (val_fraction {val_fraction}; roles come from a hash of vid_id, so adding records "
                "never moves existing ones) -- add records of that class or change val_fraction"
            )
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def split_arrays(frames, lengths, labels, ids, val_fraction: float = 0.25, *, maxlen: int = MAXLEN,
                 source: str = "training data") -> dict:
    """Arrays for training from flat frames: x_train/y_train/x_val/y_val (padded uint8), ids, true lengths."""
    x = pad_frames(frames, lengths, maxlen)
    y = np.asarray(labels).astype(np.int8)
    tr, va = split_roles(ids, y, val_fraction, source)
    return {
        "x_train": x[tr],
        "y_train": y[tr],
        "len_train": lengths[tr],
        "ids_train": ids[tr],
        "x_val": x[va],
        "y_val": y[va],
        "len_val": lengths[va],
        "ids_val": ids[va],
    }


def split_and_pad(rec: Records, val_fraction: float = 0.25, *, maxlen: int = MAXLEN) -> dict:
    """:func:`split_arrays` for parsed :class:`~ml.data.Records` (no seed: roles come from the ids)."""
    return split_arrays(rec.frames, rec.lengths, rec.labels, rec.ids, val_fraction, maxlen=maxlen,
                        source=str(rec.path or "training data"))
