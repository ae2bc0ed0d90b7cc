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
from dataclasses import dataclass, field

import numpy as np

from ml.fsutil import atomic_output
from ml.json_stream import iter_raw_records

log = logging.getLogger(__name__)

MAXLEN = 10
N_FEATURES = 128
EMBEDDING_FIELD = "audio_embedding"
REQUIRED_FIELDS = (
    "vid_id",
    "start_time_seconds_youtube_clip",
    "end_time_seconds_youtube_clip",
    EMBEDDING_FIELD,
)
LABEL_FIELD = "is_turkey"
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + (LABEL_FIELD,))

_NAN = float("nan")

SUMMARY_COLUMNS = (
    "index",
    "vid_id",
    "vid_id_ok",
    "start",
    "end",
    "duration",
    "n_frames",
    "emb_is_list",
    "row_len_min",
    "row_len_max",
    "n_bad_values",
    "value_min",
    "value_max",
    "frame_mean",
    "has_label",
    "label",
    "label_ok",
    "missing_fields",
    "extra_fields",
)


@dataclass
class Records:
    """Parsed records: frames stored flat (``frames[offsets[i]:offsets[i+1]]`` is record i)."""

    path: str
    ids: np.ndarray  # object array of str (repr() for non-string ids)
    frames: np.ndarray  # (total_frames, 128) uint8; records whose embedding is invalid contribute 0 frames
    lengths: np.ndarray  # (N,) int32, frames stored per record
    labels: np.ndarray  # (N,) int8; -1 where missing or invalid
    summary: dict = field(repr=False, default_factory=dict)  # column -> np.ndarray / list, see SUMMARY_COLUMNS
    sha256: str | None = None  # of the file's bytes, computed while parsing (no second read)

    def __len__(self) -> int:
        return len(self.ids)

    def summary_frame(self):
        """The per-record summary columns (:data:`SUMMARY_COLUMNS`) as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame({c: self.summary[c] for c in SUMMARY_COLUMNS})


def _is_number(v) -> bool:
    return type(v) in (int, float)


def _has_bool(emb) -> bool:
    return any(type(v) is bool for row in emb if type(row) is list for v in row)


def _embedding_stats(emb, text: str):
    """Return (frames_uint8_or_None, n_frames, row_min, row_max, n_bad, vmin, vmax, mean)."""
    if type(emb) is not list:
        return None, -1, 0, 0, 0, 0, 0, float("nan")
    if not emb:
        return None, 0, 0, 0, 0, 0, 0, float("nan")
    arr = None
    try:
        arr = np.array(emb)
    except (ValueError, TypeError, OverflowError):
        arr = None
    # Booleans mixed with ints would pass as ints; the text test keeps the exact type check rare.
    if arr is not None and ("true" in text or "false" in text) and _has_bool(emb):
        arr = None
    if arr is not None and arr.dtype.kind == "i" and arr.ndim == 2:
        n, width = arr.shape
        vmin, vmax = int(arr.min()), int(arr.max())
        ok = width == N_FEATURES and vmin >= 0 and vmax <= 255
        return (
            arr.astype(np.uint8) if ok else None,
            n,
            width,
            width,
            0,
            vmin,
            vmax,
            float(arr.mean()),
        )
    # Slow path, only for malformed embeddings: describe what is wrong.
    row_lens, bad, vmin, vmax, total, count = [], 0, None, None, 0, 0
    for row in emb:
        if type(row) is not list:
            row_lens.append(-1)
            bad += 1
            continue
        row_lens.append(len(row))
        for v in row:
            if type(v) is int:
                vmin = v if vmin is None or v < vmin else vmin
                vmax = v if vmax is None or v > vmax else vmax
                total += v
                count += 1
            else:
                bad += 1
    return (
        None,
        len(emb),
        min(row_lens),
        max(row_lens),
        bad,
        0 if vmin is None else vmin,
        0 if vmax is None else vmax,
        total / count if count else float("nan"),
    )


class _RecordTable:
    """Accumulates the arrays and summary columns of parsed records, whichever reader produced them."""

    def __init__(self):
        self.cols = {c: [] for c in SUMMARY_COLUMNS}
        self.frames, self.lengths, self.labels, self.ids = [], [], [], []

    def add(self, index: int, rec: dict, stats: tuple) -> None:
        """One record: ``rec`` holds its decoded fields (the embedding is described by ``stats``)."""
        self.add_batch(index, {k: [v] for k, v in rec.items()}, [stats])

    def add_batch(self, first: int, fields: dict[str, list], stats: list[tuple]) -> None:
        """Records ``first``, ``first + 1``, ... that hold the same fields in the same order: ``fields``
        maps each field name to the records' decoded values (the embedding's values are not used: each
        embedding is described by its entry of ``stats``, see :func:`_embedding_stats`)."""
        n = len(stats)
        nothing = [None] * n
        arrs, n_frames, rmin, rmax, bad, vmin, vmax, mean = (list(col) for col in zip(*stats, strict=True))
        vids = fields.get("vid_id", nothing)
        vid_s = [v if type(v) is str else repr(v) for v in vids]
        start = [float(v) if _is_number(v) else _NAN for v in fields.get("start_time_seconds_youtube_clip", nothing)]
        end = [float(v) if _is_number(v) else _NAN for v in fields.get("end_time_seconds_youtube_clip", nothing)]
        labels = fields.get(LABEL_FIELD, nothing)
        label_ok = [type(v) is int and v in (0, 1) for v in labels]
        missing = ",".join(f for f in REQUIRED_FIELDS if f not in fields)
        extra = ",".join(k for k in fields if k not in KNOWN_FIELDS)

        self.ids += vid_s
        self.frames += [arr for arr in arrs if arr is not None]
        self.lengths += [0 if arr is None else len(arr) for arr in arrs]
        self.labels += [v if ok else -1 for v, ok in zip(labels, label_ok, strict=True)]
        for c, values in (
            ("index", range(first, first + n)),
            ("vid_id", vid_s),
            ("vid_id_ok", [type(v) is str and v.strip() != "" for v in vids]),
            ("start", start),
            ("end", end),
            ("duration", [e - s for s, e in zip(start, end, strict=True)]),
            ("n_frames", n_frames),
            ("emb_is_list", [k >= 0 for k in n_frames]),
            ("row_len_min", rmin),
            ("row_len_max", rmax),
            ("n_bad_values", bad),
            ("value_min", vmin),
            ("value_max", vmax),
            ("frame_mean", mean),
            ("has_label", [LABEL_FIELD in fields] * n),
            ("label", [float(v) if ok else _NAN for v, ok in zip(labels, label_ok, strict=True)]),
            ("label_ok", label_ok),
            ("missing_fields", [missing] * n),
            ("extra_fields", [extra] * n),
        ):
            self.cols[c] += values

    def records(self, path, sha256: str) -> Records:
        text_columns = ("vid_id", "missing_fields", "extra_fields")
        summary = {c: np.asarray(v, dtype=object if c in text_columns else None) for c, v in self.cols.items()}
        return Records(
            path=str(path),
            ids=np.asarray(self.ids, dtype=object),
            frames=np.concatenate(self.frames) if self.frames else np.zeros((0, N_FEATURES), np.uint8),
            lengths=np.asarray(self.lengths, dtype=np.int32),
            labels=np.asarray(self.labels, dtype=np.int8),
            summary=summary,
            sha256=sha256,
        )


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
