"""Split (stratified, seeded) and pad: the step between validation and training."""

from __future__ import annotations

import numpy as np

from ml.data import MAXLEN, Records, pad_frames


def stratified_split(labels: np.ndarray, val_fraction: float = 0.25, seed: int = 42):
    """Indices (train, val) as the seed's ``train_test_split(test_size=0.25)``, stratified by label."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=labels)
    return np.sort(tr), np.sort(va)


def split_arrays(frames, lengths, labels, ids, val_fraction: float = 0.25, seed: int = 42, maxlen: int = MAXLEN) -> dict:
    """Arrays for training from flat frames: x_train/y_train/x_val/y_val (padded uint8), ids, true lengths."""
    x = pad_frames(frames, lengths, maxlen)
    y = np.asarray(labels).astype(np.int8)
    tr, va = stratified_split(y, val_fraction, seed)
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


def split_and_pad(rec: Records, val_fraction: float = 0.25, seed: int = 42, maxlen: int = MAXLEN) -> dict:
    """:func:`split_arrays` for parsed :class:`~ml.data.Records`."""
    return split_arrays(rec.frames, rec.lengths, rec.labels, rec.ids, val_fraction, seed, maxlen)
