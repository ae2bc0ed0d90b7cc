"""Loading Kaggle "Don't call me turkey!" JSON into compact arrays, and Keras-style padding.

Two readers produce the same :class:`Records`. A well-formed file takes the fast reader (msgspec keeps
each ``audio_embedding`` as raw JSON text, and a batch of them becomes numbers in one ``np.fromstring``
call; ``bench/parse_speed.py`` measured 7.0 s vs 15.4 s CPU at 100x Kaggle size, at 1.0 vs 0.4 GiB peak
RSS, as it holds the file in memory). Anything else is read by the streaming reader, the reference: it
decodes one record at a time with the C JSON scanner and turns each embedding into a ``uint8`` array at
once, so the whole file never exists as Python lists of lists (that costs several GB at 100x Kaggle
size). ``tests/test_data_fast.py`` holds the two to the same result. Alongside the arrays both keep one
row of scalar summary columns per record; :mod:`ml.validation` runs the data rules on that summary
table.

Structural problems (unreadable, empty, not JSON, truncated, not a list, an element that is not an
object, NaN/Infinity literals) raise :class:`~ml.errors.DataError` here, naming the file, the rule and
the record index. Record-level rules (field types, frame shapes, value ranges, labels) are *measured*
here and *judged* in :mod:`ml.validation`.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.errors import DataError
from ml.fsutil import atomic_output

log = logging.getLogger(__name__)

MAXLEN = 10
N_FEATURES = 128
REQUIRED_FIELDS = (
    "vid_id",
    "start_time_seconds_youtube_clip",
    "end_time_seconds_youtube_clip",
    "audio_embedding",
)
LABEL_FIELD = "is_turkey"
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + (LABEL_FIELD,))
_CHUNK = 1 << 22  # characters read per refill (4 Mi)

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


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str):
    raise _NonFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_WS = " \t\n\r"


class _HashingReader(io.RawIOBase):
    """Raw reader that feeds every byte it reads into a hash object."""

    def __init__(self, raw, digest):
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.raw.readinto(b)
        if n:
            self.digest.update(memoryview(b)[:n])
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


class _Stream:
    """A growing text buffer over a file, with line tracking for error messages."""

    def __init__(self, path: Path, digest=None):
        self.path = path
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115
            if digest is not None:
                raw = io.BufferedReader(_HashingReader(raw, digest), buffer_size=1 << 20)
            self.fh = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        except OSError as exc:
            raise DataError(path, "file.readable", f"cannot open file ({exc.strerror or exc})") from None
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in text already dropped from buf

    def close(self):
        self.fh.close()

    def refill(self, size: int = _CHUNK) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.fh.read(size)
        except UnicodeDecodeError as exc:
            raise DataError(self.path, "file.utf8", f"file is not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise DataError(self.path, "file.readable", f"cannot read file ({exc.strerror or exc})") from None
        if not chunk:
            self.eof = True
            return False
        if self.pos > _CHUNK:  # drop consumed text so memory stays bounded
            self.lines_before += self.buf.count("\n", 0, self.pos)
            self.buf = self.buf[self.pos :]
            self.pos = 0
        self.buf += chunk
        return True

    def skip_ws(self) -> str | None:
        """Advance past whitespace; return the next character or None at end of file."""
        while True:
            buf, n, p = self.buf, len(self.buf), self.pos
            while p < n and buf[p] in _WS:
                p += 1
            self.pos = p
            if p < n:
                return buf[p]
            if not self.refill():
                return None

    def where(self, p: int | None = None) -> str:
        p = self.pos if p is None else p
        line = self.lines_before + self.buf.count("\n", 0, p) + 1
        col = p - (self.buf.rfind("\n", 0, p) + 1) + 1
        return f"line {line} column {col}"


def _cut_short(rest: str) -> bool:
    """True when the text left after a JSON error could be the start of valid JSON (the file was cut)."""
    rest = rest.strip(_WS)
    if rest in ("", "-", ".", "e", "E", "e-", "e+", "E-", "E+"):  # nothing left, or a number cut mid-way
        return True
    return any(lit.startswith(rest) for lit in ("true", "false", "null"))


def iter_raw_records(path, digest=None):
    """Yield ``(index, record_object, record_text)`` for each element of the top-level JSON list.

    Raises DataError for any structural problem, naming the record index where one applies. When
    ``digest`` (a hashlib object) is given, every byte of the file is fed to it: a complete iteration
    reads the file to its end.
    """
    path = Path(path)
    s = _Stream(path, digest)
    try:
        first = s.skip_ws()
        if first is None:
            raise DataError(path, "file.non_empty", "file is empty (expected a JSON list of records)")
        if first != "[":
            head = s.buf[s.pos : s.pos + 5]
            if first == "{":
                msg = "top-level JSON value is an object; expected a list of records"
            elif first in '"-0123456789' or head.startswith(("true", "false", "null")):
                msg = "top-level JSON value is not a list; expected a list of records"
            else:
                raise DataError(path, "json.syntax", f"not JSON: unexpected character {first!r} at {s.where()}")
            raise DataError(path, "json.list", msg)
        s.pos += 1
        index = 0
        while True:
            ch = s.skip_ws()
            if ch is None:
                raise DataError(
                    path, "json.complete", f"truncated JSON: file ends inside the list after {index} record(s)"
                )
            if ch == "]" and index == 0:
                s.pos += 1
                break
            while True:
                try:
                    obj, end = _DECODER.raw_decode(s.buf, s.pos)
                    if end >= len(s.buf) and not s.eof and not isinstance(obj, (dict, list)):
                        raise json.JSONDecodeError("may continue", s.buf, end)  # number cut at a chunk edge
                    break
                except json.JSONDecodeError as exc:
                    if s.refill(max(_CHUNK, len(s.buf))):
                        continue
                    if "Unterminated" in exc.msg or _cut_short(s.buf[exc.pos :]):
                        raise DataError(
                            path,
                            "json.complete",
                            f"truncated JSON: file ends inside record #{index}",
                            [(index, None)],
                        ) from None
                    raise DataError(
                        path,
                        "json.syntax",
                        f"invalid JSON in record #{index} at {s.where(exc.pos)}: {exc.msg}",
                        [(index, None)],
                    ) from None
                except _NonFinite as exc:
                    raise DataError(
                        path,
                        "json.finite",
                        f"record #{index} contains the non-standard literal {exc.args[0]} (NaN/Infinity are not JSON)",
                        [(index, None)],
                    ) from None
                except RecursionError:
                    raise DataError(
                        path, "json.syntax", f"record #{index} is nested too deeply to parse", [(index, None)]
                    ) from None
                except ValueError as exc:  # e.g. an integer literal longer than Python's digit limit
                    reason = str(exc).split(":")[0]
                    raise DataError(
                        path, "json.syntax", f"invalid JSON in record #{index}: {reason}", [(index, None)]
                    ) from None
            if not isinstance(obj, dict):
                raise DataError(
                    path,
                    "record.object",
                    f"record #{index} is a JSON {type(obj).__name__}, not an object",
                    [(index, None)],
                )
            yield index, obj, s.buf[s.pos : end]
            s.pos = end
            index += 1
            ch = s.skip_ws()
            if ch == ",":
                s.pos += 1
                continue
            if ch == "]":
                s.pos += 1
                break
            if ch is None:
                raise DataError(
                    path, "json.complete", f"truncated JSON: file ends after record #{index - 1}", [(index - 1, None)]
                )
            raise DataError(
                path, "json.syntax", f"invalid JSON after record #{index - 1} at {s.where()}: expected ',' or ']'"
            )
        if s.skip_ws() is not None:
            raise DataError(path, "json.syntax", f"extra data after the closing ']' at {s.where()}")
    finally:
        s.close()


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
        arr, n, rmin, rmax, bad, vmin, vmax, mean = stats
        vid = rec.get("vid_id")
        vid_ok = type(vid) is str and vid.strip() != ""
        vid_s = vid if type(vid) is str else repr(vid)
        start = rec.get("start_time_seconds_youtube_clip")
        end = rec.get("end_time_seconds_youtube_clip")
        start_f = float(start) if _is_number(start) else float("nan")
        end_f = float(end) if _is_number(end) else float("nan")
        has_label = LABEL_FIELD in rec
        lab = rec.get(LABEL_FIELD)
        label_ok = type(lab) is int and lab in (0, 1)
        missing = [f for f in REQUIRED_FIELDS if f not in rec]
        extra = [k for k in rec if k not in KNOWN_FIELDS]

        self.ids.append(vid_s)
        if arr is not None:
            self.frames.append(arr)
            self.lengths.append(len(arr))
        else:
            self.lengths.append(0)
        self.labels.append(lab if label_ok else -1)
        for c, v in (
            ("index", index),
            ("vid_id", vid_s),
            ("vid_id_ok", vid_ok),
            ("start", start_f),
            ("end", end_f),
            ("duration", end_f - start_f),
            ("n_frames", n),
            ("emb_is_list", n >= 0),
            ("row_len_min", rmin),
            ("row_len_max", rmax),
            ("n_bad_values", bad),
            ("value_min", vmin),
            ("value_max", vmax),
            ("frame_mean", mean),
            ("has_label", has_label),
            ("label", float(lab) if label_ok else float("nan")),
            ("label_ok", label_ok),
            ("missing_fields", ",".join(missing)),
            ("extra_fields", ",".join(extra)),
        ):
            self.cols[c].append(v)

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


# ---------------------------------------------------------------- fast reader for well-formed files
#
# msgspec decodes the whole file in one C pass, keeping every ``audio_embedding`` as raw JSON text
# (``msgspec.Raw``); the embeddings of a batch of records are then checked by a few byte counts and
# turned into numbers by one ``np.fromstring`` call. Only embeddings in the common shape -- rows of 128
# integers in 0..255 -- take that route; any other embedding is decoded and measured by :func:`_embedding_stats`, exactly as
# the streaming reader does. Whenever the file is not valid JSON, not a list of objects, or has anything
# msgspec reads differently from Python's ``json`` (NaN literals, numbers out of a double's range), the
# fast reader gives up and :func:`iter_raw_records` reads the file instead, with its precise messages.

_EMB_CHARS = b"0123456789,[] \t\n\r|"
_JSON_WS = b" \t\n\r"
_FAST_BATCH = 4096  # records whose embeddings are checked and converted together
_MAX_FAST_BYTES = 8 << 30  # larger files are streamed (the fast reader holds the file in memory)


_OPEN, _CLOSE, _COMMA, _BAR = (ord(c) for c in "[],|")


def _plain_batch_stats(raws: list) -> list | None:
    """:func:`_embedding_stats` for a batch of raw embeddings that are all ``[[v, ...], ...]`` lists of
    unsigned integers, computed for the whole batch at once; an entry is None for a record whose rows are
    not 128 wide or whose values exceed 255 (the caller measures those one by one).

    Returns None when any embedding of the batch has another shape (other characters, scalars beside
    rows, deeper nesting, empty lists).
    """
    blob = b"|".join(raws)
    if blob.translate(None, _EMB_CHARS):
        return None  # floats, negatives, strings, booleans, nulls or objects somewhere
    compact = blob.translate(None, _JSON_WS)
    n = len(raws)
    # Each raw is valid JSON (msgspec checked it) made of digits, commas and brackets. Its shape is a
    # non-empty list of non-empty lists of integers exactly when: it starts with "[[", no list is empty,
    # every "]," is followed by "[" (no scalar after a list), and -- checked on the numbers below -- every
    # "]" closes a run of numbers except the last one (no deeper nesting).
    a = np.frombuffer(compact, np.uint8)
    bars = np.flatnonzero(a == _BAR)
    starts = np.concatenate(([0], bars + 1))
    if (a[starts] != _OPEN).any() or (a[starts + 1] != _OPEN).any():
        return None
    opens = np.flatnonzero(a == _OPEN)
    if (a[opens + 1] == _CLOSE).any():
        return None
    closes = np.flatnonzero(a[:-1] == _CLOSE)  # the very last byte closes the last record
    after = closes[a[closes + 1] == _COMMA]
    if (a[after + 2] != _OPEN).any():
        return None
    # "[[1,2],[3]]|[[4]]" -> "1,2,-1,3,-1,-1,-2,4,-1,-1": -1 closes a list, -2 separates records.
    text = compact.translate(None, b"[").replace(b"]", b",-1").replace(b"|", b",-2,")
    values = np.fromstring(text, dtype=np.int32, sep=",")  # text mode: C parsing, not deprecated
    values = np.append(values, -2)
    is_mark = values < 0
    marks = np.flatnonzero(is_mark)
    kind = values[marks]
    after_number = np.ones(len(marks), bool)
    after_number[1:] = np.diff(marks) > 1
    after_number[0] = marks[0] > 0
    row_close = (kind == -1) & after_number
    # Per record the marks must read: (numbers, -1) per row, then -1 (the outer list), then -2.
    outer_close = (kind == -1) & ~after_number
    sep = kind == -2
    if int(sep.sum()) != n or int(outer_close.sum()) != n:
        return None
    sep_idx = np.flatnonzero(sep)
    if (sep_idx < 2).any() or not outer_close[sep_idx - 1].all() or not row_close[sep_idx - 2].all():
        return None
    row_marks = marks[row_close]
    prev_mark = np.concatenate(([-1], marks))[:-1][row_close]  # the mark before each row's numbers
    widths = row_marks - prev_mark - 1
    record_of_mark = np.cumsum(sep) - sep  # index of the record each mark belongs to
    row_record = record_of_mark[row_close]
    rows_per_record = np.bincount(row_record, minlength=n)
    ragged = np.bincount(row_record, weights=widths != N_FEATURES, minlength=n) > 0
    out: list = [None] * n
    if ragged.all():
        return out
    numbers = values[~is_mark]
    if ragged.any():  # keep the rows of the records whose rows are all 128 wide
        row_start = np.concatenate(([0], np.cumsum(widths)[:-1]))[~ragged[row_record]]
        frames = numbers[row_start[:, None] + np.arange(N_FEATURES)]
    else:
        frames = numbers.reshape(-1, N_FEATURES)
    counts = rows_per_record[~ragged]
    first_row = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rec_min = np.minimum.reduceat(frames.min(axis=1), first_row)
    rec_max = np.maximum.reduceat(frames.max(axis=1), first_row)
    rec_mean = np.add.reduceat(frames.sum(axis=1, dtype=np.int64), first_row) / (counts * N_FEATURES)
    frames8 = frames.astype(np.uint8)
    for i, r0, c, lo, hi, mean in zip(
        np.flatnonzero(~ragged).tolist(),
        first_row.tolist(),
        counts.tolist(),
        rec_min.tolist(),
        rec_max.tolist(),
        rec_mean.tolist(),
        strict=True,
    ):
        if hi <= 255:
            out[i] = (frames8[r0 : r0 + c], c, N_FEATURES, N_FEATURES, 0, lo, hi, mean)
    return out


def _read_records_fast(path) -> Records | None:
    """:class:`Records` for a well-formed file, or None when the streaming reader must decide."""
    import msgspec

    path = Path(path)
    try:
        if path.stat().st_size > _MAX_FAST_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    body = memoryview(data)[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        raw_records = msgspec.json.decode(body, type=list[dict[str, msgspec.Raw]])
    except (msgspec.MsgspecError, RecursionError):
        return None
    decode = msgspec.json.decode
    table = _RecordTable()

    def slow_stats(raw):
        if raw is None:
            return _embedding_stats(None, "")
        return _embedding_stats(decode(raw), bytes(raw).decode("utf-8"))

    try:
        for first in range(0, len(raw_records), _FAST_BATCH):
            batch = raw_records[first : first + _FAST_BATCH]
            embs = [rec.get("audio_embedding") for rec in batch]
            plain = None if any(e is None for e in embs) else _plain_batch_stats(embs)
            for i, rec in enumerate(batch):
                values = {k: (None if k == "audio_embedding" else decode(v)) for k, v in rec.items()}
                stats = plain[i] if plain is not None else None
                table.add(first + i, values, stats or slow_stats(embs[i]))
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return table.records(path, hashlib.sha256(data).hexdigest())


def read_records(path) -> Records:
    """Parse a train/test JSON file into :class:`Records`. Raises DataError on structural problems only.

    Well-formed files take the fast reader; anything else is streamed record by record, so structural
    errors name the rule, the record and the position.
    """
    fast = _read_records_fast(path)
    if fast is not None:
        return fast
    return _read_records_streaming(path)


def _read_records_streaming(path) -> Records:
    table = _RecordTable()
    digest = hashlib.sha256()
    for index, rec, text in iter_raw_records(path, digest):
        table.add(index, rec, _embedding_stats(rec.get("audio_embedding"), text))
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
