"""What a parsed input file is: :class:`Records` (compact arrays and one row of scalar summary columns per
record) and the table both readers fill (the streaming reader of :mod:`ml.data`, the fast one of
:mod:`ml.data_fast`). Record-level rules are *measured* here (:func:`_embedding_stats`) and judged in
:mod:`ml.validation`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

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
