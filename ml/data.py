"""Loading Kaggle "Don't call me turkey!" JSON into compact arrays, and Keras-style padding.

Two readers produce the same :class:`Records`. A well-formed file takes the fast reader
(:mod:`ml.data_fast`: msgspec keeps each ``audio_embedding`` as raw JSON text, and a batch of them becomes
numbers in one ``np.fromstring`` call, batches spread over forked worker processes; it holds the file in
memory; ``python -m bench.scale`` measures it). Anything else is read by the streaming reader, the
reference: it decodes one record at a time (:mod:`ml.json_stream`) and turns each embedding into a
``uint8`` array at once, so the whole file never exists as Python lists of lists.
``tests/ml/test_data_fast.py`` holds the two to the same result. Alongside the arrays
both keep one row of scalar summary columns per record; :mod:`ml.validation` runs the data rules on
that summary table.

Structural problems (unreadable, empty, not JSON, truncated, not a list, an element that is not an
object, NaN/Infinity literals) raise :class:`~ml.errors.DataError` (:mod:`ml.json_stream`), naming the
file, the rule and the record index. Record-level rules (field types, frame shapes, value ranges, labels) are *measured*
here and *judged* in :mod:`ml.validation`.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np

from ml.fsutil import atomic_output
from ml.json_stream import iter_raw_records
from ml.records import (  # noqa: F401 - re-exported: the names callers know ml.data by
    EMBEDDING_FIELD,
    KNOWN_FIELDS,
    LABEL_FIELD,
    MAXLEN,
    N_FEATURES,
    REQUIRED_FIELDS,
    SUMMARY_COLUMNS,
    Records,
    _embedding_stats,
    _RecordTable,
)

log = logging.getLogger(__name__)


def read_records(path, max_in_memory: int | None = None) -> Records:
    """Parse a train/test JSON file into :class:`Records`. Raises DataError on structural problems only.

    Well-formed files take the fast reader; anything else is streamed record by record, so structural
    errors name the rule, the record and the position. ``max_in_memory`` (bytes): a larger file is always
    streamed, so the file's text is never held whole (scoring keeps its memory bounded that way).
    """
    import os

    from ml.data_fast import read_records_fast

    if max_in_memory is not None and os.path.isfile(path) and os.path.getsize(path) > max_in_memory:
        return _read_records_streaming(path)
    fast = read_records_fast(path)
    if fast is not None:
        return fast
    return _read_records_streaming(path)


def _read_records_streaming(path) -> Records:
    table = _RecordTable()
    digest = hashlib.sha256()
    for index, rec, text in iter_raw_records(path, digest):
        table.add(index, rec, _embedding_stats(rec.get(EMBEDDING_FIELD), text))
    return table.records(path, digest.hexdigest())


def pad_frames(frames: np.ndarray, lengths: np.ndarray, maxlen: int = MAXLEN) -> np.ndarray:
    """Pad/truncate each record to ``maxlen`` frames exactly like ``keras.utils.pad_sequences(maxlen=...)``.

    Keras' defaults: ``padding='pre'`` (zeros before the frames) and ``truncating='pre'`` (keep the last
    ``maxlen`` frames). Returns ``(N, maxlen, 128)`` uint8.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    out = np.zeros((n, maxlen, frames.shape[1] if frames.ndim == 2 else N_FEATURES), dtype=np.uint8)
    if n == 0 or len(frames) == 0:
        return out
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    rec = np.repeat(np.arange(n), lengths)  # record of each stored frame
    pos_from_end = offsets[1:][rec] - np.arange(offsets[-1]) - 1  # 0 for the last frame of its record
    if lengths.max() <= maxlen:  # nothing to truncate: skip the mask copies
        out[rec, maxlen - 1 - pos_from_end] = frames
        return out
    keep = pos_from_end < maxlen
    out[rec[keep], maxlen - 1 - pos_from_end[keep]] = frames[keep]
    return out


# ---------------------------------------------------------------- compact array files passed between tasks


def save_arrays(path, **arrays) -> str:
    """Write arrays to ``path`` (.npz) atomically: a reader never sees a half-written file."""
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return str(path)


def load_arrays(path) -> dict:
    """Read back a file :func:`save_arrays` wrote: ``{name: array}``, loaded into memory."""
    with np.load(path, allow_pickle=True) as z:
        return {k: z[k] for k in z.files}
