"""The fast reader of :func:`ml.data.read_records`, for well-formed files.

msgspec decodes the whole file in one C pass, keeping every field as raw JSON text (``msgspec.Raw``). Per
batch of records, the small fields are decoded as one JSON array each, and the embeddings are checked by
a few whole-batch byte operations and turned into numbers by one ``np.fromstring`` call. Only embeddings
in the common shape -- a non-empty list of non-empty rows of unsigned integers -- take that route; any
other embedding is decoded and measured by :func:`ml.data._embedding_stats`, exactly as the streaming
reader does. Whenever the file is not valid JSON, not a list of objects, or holds anything msgspec reads
differently from Python's ``json`` (NaN literals, numbers out of a double's range), the fast reader
returns None and the streaming reader (:func:`ml.json_stream.iter_raw_records`) reads the file instead, with
its precise messages. ``tests/ml/test_data_fast.py`` holds the two readers to the same result;
``python -m bench.scale`` measures them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import signal
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ml.records import EMBEDDING_FIELD, N_FEATURES, Records, _embedding_stats, _RecordTable

log = logging.getLogger(__name__)

_FAST_BATCH = 4096  # records whose fields and embeddings are decoded together
_MAX_PARSE_WORKERS = 4  # beyond this the serial part (decoding, the summary table) dominates
_MAX_FAST_BYTES = 8 << 30  # larger files are streamed (the fast reader holds the file in memory)
_EMB_CHARS = b"0123456789,[]|"
_JSON_WS = b" \t\n\r"
_OPEN, _CLOSE, _BAR, _NINE = (ord(c) for c in "[]|9")
_COMMA = ord(",")
_POWERS_OF_TEN = [10**k for k in range(1, 10)]  # int32 values have at most 10 digits
_BAR_TO_COMMA = bytes.maketrans(b"|", b",")  # with the brackets deleted: all rows' numbers, in order


def _bracket_shape_ok(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Check that the whitespace-free bytes ``a`` of ``|``-joined embeddings (valid JSON each, made of
    digits, commas and brackets only) are all ``[[n,...],[n,...],...]``: rows of numbers inside one list.

    Returns, per row, the positions of its ``[`` and ``]`` in ``a``, or None for any other shape (scalars
    beside rows, numbers directly in the outer list, deeper nesting, a bare number).
    """
    pos = np.flatnonzero(a > _NINE)  # '[', ']' and '|' sort above the digits and the comma
    kind = np.append(a[pos], _BAR)  # a virtual '|' closes the last record
    pos = np.append(pos, len(a))
    if len(a) == 0 or pos[0] != 0 or kind[0] != _OPEN:
        return None
    depth = np.cumsum((kind == _OPEN).astype(np.int8) - (kind == _CLOSE), dtype=np.int32)  # after each
    if depth.max() > 2:
        return None
    k, d, nxt, gap = kind[:-1], depth[:-1], kind[1:], np.diff(pos)
    next_open_adjacent = (nxt == _OPEN) & (gap == 1)
    # Valid JSON with no empty list: a row's '[' is followed by digits and commas up to its ']', and a
    # gap of 2 after a row's ']' can only hold the comma before the next row.
    bad = (
        ((k == _OPEN) & (d == 1) & ~next_open_adjacent)  # outer '[' -> first row's '['
        | ((k == _CLOSE) & (d == 1) & ~(((nxt == _OPEN) & (gap == 2)) | ((nxt == _CLOSE) & (gap == 1))))
        | ((k == _CLOSE) & (d == 0) & ~((nxt == _BAR) & (gap == 1)))  # outer ']' ends the record
        | ((k == _BAR) & ~next_open_adjacent)  # the next record starts right away
    )
    if bad.any():
        return None
    row_open = (k == _OPEN) & (d == 2)
    return pos[:-1][row_open], pos[1:][row_open]


def _parse_numbers(blob: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """Every row's values of the ``|``-joined embeddings ``blob`` (shape checked by
    :func:`_bracket_shape_ok`), in order, and the number of digits of each; None unless every value was
    read exactly.

    ``int32`` wraps values of 2**31 and more. A wrapped value is caught by the digits: computed from the
    values read, they are exact for a value read right and fewer than written for a wrapped one with a
    different count, so their total equals the digit bytes in the text only when every count is exact.
    (A wrapped value with as many digits as written is > 255 and sends its record to the exact path.)
    """
    text = blob.translate(_BAR_TO_COMMA, b"[]")  # "1,2,3,...": one comma between consecutive values
    numbers = np.fromstring(text, dtype=np.int32, sep=",")
    if len(numbers) == 0 or numbers.min() < 0:
        return None
    digits = np.ones(len(numbers), np.int8)
    top = int(numbers.max())
    for power in _POWERS_OF_TEN:
        if power > top:
            break
        digits += numbers >= power
    if int(digits.sum()) != len(text) - (len(numbers) - 1):
        return None
    return numbers, digits


def _row_widths(a: np.ndarray, opens: np.ndarray, closes: np.ndarray, digits: np.ndarray) -> np.ndarray | None:
    """The number of values in each row (``opens``/``closes``: its brackets' positions in ``a``), given
    the exact ``digits`` of every row's values in order; None if they do not add up.

    The usual case, every row 128 wide, is proven without counting commas: cut the values into rows of
    128 and the text each row would need (its values' digits plus 127 commas) must be exactly the bytes
    between its brackets. Had any row another width, the first such row would cover values that are not
    its own, or miss some, and need more text than it has, or less. Otherwise the commas inside each
    row are counted.
    """
    if len(digits) == N_FEATURES * len(opens):
        needed = digits.reshape(-1, N_FEATURES).sum(axis=1, dtype=np.int64) + N_FEATURES - 1
        if (needed == closes - opens - 1).all():
            return np.full(len(opens), N_FEATURES)
    edges = np.empty(2 * len(opens), np.int64)
    edges[0::2], edges[1::2] = opens, closes
    widths = np.add.reduceat(a == _COMMA, edges, dtype=np.int64)[0::2] + 1
    return widths if int(widths.sum()) == len(digits) else None


class _PlainBatch(NamedTuple):
    """What :func:`_plain_batch` measured on a batch of ``n`` embeddings: for the records ``kept`` (all
    rows 128 wide), their frames (rows ``first_row[j]`` to ``first_row[j] + counts[j]`` of ``frames8``,
    wrapped to ``uint8``: only records whose ``rec_min``/``rec_max`` are within 0..255 use them) and
    the min, max and mean of their values."""

    n: int
    kept: np.ndarray
    first_row: np.ndarray
    counts: np.ndarray
    rec_min: np.ndarray
    rec_max: np.ndarray
    rec_mean: np.ndarray
    frames8: np.ndarray


def _plain_batch(raws: list) -> _PlainBatch | None:
    """Measure a batch of raw embeddings that are all ``[[v, ...], ...]`` lists of unsigned integers, the
    whole batch at once (numpy only, so a worker process can send the result back cheaply).

    Returns None when any embedding of the batch has another shape (other characters, scalars beside
    rows, deeper nesting, empty lists).
    """
    if any(r is None for r in raws):
        return None  # a record without an embedding: measured one by one
    blob = b"|".join(raws)
    other = blob.translate(None, _EMB_CHARS)
    if other:
        if other.translate(None, _JSON_WS):
            return None  # floats, negatives, strings, booleans, nulls or objects somewhere
        blob = blob.translate(None, _JSON_WS)
    if b"[]" in blob:
        return None
    a = np.frombuffer(blob, np.uint8)
    rows = _bracket_shape_ok(a)
    if rows is None:
        return None
    opens, closes = rows
    n = len(raws)
    row_record = np.searchsorted(np.flatnonzero(a == _BAR), opens)  # '|'s before a row: its record
    rows_per_record = np.bincount(row_record, minlength=n)
    parsed = _parse_numbers(blob)
    if parsed is None:
        return None
    numbers, digits = parsed
    widths = _row_widths(a, opens, closes, digits)
    if widths is None:
        return None
    ragged = np.bincount(row_record, weights=widths != N_FEATURES, minlength=n) > 0
    kept = np.flatnonzero(~ragged)
    if ragged.any():  # keep the rows of the records whose rows are all 128 wide
        row_start = np.concatenate(([0], np.cumsum(widths)[:-1]))[~ragged[row_record]]
        frames = numbers[row_start[:, None] + np.arange(N_FEATURES)]
    else:
        frames = numbers.reshape(-1, N_FEATURES)
    counts = rows_per_record[kept]
    first_row = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    if len(kept) == 0:
        return _PlainBatch(n, kept, first_row, counts, counts, counts, counts.astype(float), frames.astype(np.uint8))
    return _PlainBatch(
        n,
        kept,
        first_row,
        counts,
        np.minimum.reduceat(frames.min(axis=1), first_row),
        np.maximum.reduceat(frames.max(axis=1), first_row),
        np.add.reduceat(frames.sum(axis=1), first_row) / (counts * N_FEATURES),
        frames.astype(np.uint8),
    )


def _plain_stats(batch: _PlainBatch | None, n: int) -> list:
    """Per record of a batch, the :func:`ml.data._embedding_stats` tuple :func:`_plain_batch` computed, or
    None where the record must be measured one by one (rows not 128 wide, values out of 0..255)."""
    out: list = [None] * n
    if batch is None:
        return out
    for i, r0, c, lo, hi, mean in zip(
        batch.kept.tolist(),
        batch.first_row.tolist(),
        batch.counts.tolist(),
        batch.rec_min.tolist(),
        batch.rec_max.tolist(),
        batch.rec_mean.tolist(),
        strict=True,
    ):
        if lo >= 0 and hi <= 255:
            out[i] = (batch.frames8[r0 : r0 + c], c, N_FEATURES, N_FEATURES, 0, lo, hi, mean)
    return out


def _in_workers(fn, items: list, workers: int) -> list:
    """``[fn(x) for x in items]``, the items cut into ``workers`` contiguous shares; every share but the
    first is computed by a forked child process that pickles its results back through a pipe, while this
    process computes the first. A child that fails or dies leaves its share to be computed here."""
    shares = [s.tolist() for s in np.array_split(np.arange(len(items)), max(1, min(workers, len(items))))]
    if len(shares) < 2 or not hasattr(os, "fork"):
        return [fn(x) for x in items]
    results: list = [None] * len(items)
    children = []
    try:
        for share in shares[1:]:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: compute, send, exit without running the parent's clean-up
                code = 1
                try:
                    os.close(r)
                    with os.fdopen(w, "wb") as out:
                        pickle.dump([fn(items[i]) for i in share], out, protocol=pickle.HIGHEST_PROTOCOL)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children.append((pid, os.fdopen(r, "rb"), share))
        for i in shares[0]:
            results[i] = fn(items[i])
        while children:
            pid, pipe, share = children.pop(0)
            try:
                got = pickle.load(pipe)
            except Exception as exc:  # noqa: BLE001 -- any failure of the child: do its share here
                log.warning("parse worker %d failed (%s); parsing its share in this process", pid, exc)
                got = [fn(items[i]) for i in share]
            finally:
                pipe.close()
                _reap(pid)
            for i, value in zip(share, got, strict=True):
                results[i] = value
    finally:
        for pid, pipe, _ in children:  # only after an error here: stop the children still running
            pipe.close()
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
    return results


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def parse_workers() -> int:
    """Processes that measure embeddings: one per usable CPU, at most :data:`_MAX_PARSE_WORKERS` (and never
    more than the file has batches: :func:`_in_workers` gives each at least one)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_PARSE_WORKERS))


def read_records_fast(path, workers: int | None = None) -> Records | None:
    """:class:`~ml.data.Records` for a well-formed file, or None when the streaming reader must decide.

    Files of more than one batch (:data:`_FAST_BATCH` records) have their embeddings measured by
    ``workers`` processes (this one and forked children; default: :func:`parse_workers`).
    """
    import msgspec

    path = Path(path)
    try:
        if path.stat().st_size > _MAX_FAST_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    body = memoryview(data)[3:] if data.startswith(b"\xef\xbb\xbf") else data
    decode = msgspec.json.decode
    table = _RecordTable()

    def slow_stats(raw):
        if raw is None:
            return _embedding_stats(None, "")
        return _embedding_stats(decode(raw), bytes(raw).decode("utf-8"))

    try:
        raw_records = decode(body, type=list[dict[str, msgspec.Raw]])
        batches = [raw_records[i : i + _FAST_BATCH] for i in range(0, len(raw_records), _FAST_BATCH)]
        embeddings = [[rec.get(EMBEDDING_FIELD) for rec in batch] for batch in batches]
        measured = _in_workers(_plain_batch, embeddings, parse_workers() if workers is None else workers)
        for first, batch, embs, plain in zip(
            range(0, len(raw_records), _FAST_BATCH), batches, embeddings, measured, strict=True
        ):
            stats = [s or slow_stats(e) for s, e in zip(_plain_stats(plain, len(embs)), embs, strict=True)]
            keys = tuple(batch[0])
            if all(tuple(rec) == keys for rec in batch):  # the usual case: decode each field as one array
                nothing = [None] * len(batch)
                fields = {
                    k: nothing if k == EMBEDDING_FIELD else decode(b"[" + b",".join([r[k] for r in batch]) + b"]")
                    for k in keys
                }
                table.add_batch(first, fields, stats)
                continue
            for i, rec in enumerate(batch):
                fields = {k: [None if k == EMBEDDING_FIELD else decode(v)] for k, v in rec.items()}
                table.add_batch(first + i, fields, [stats[i]])
    except (msgspec.MsgspecError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return table.records(path, hashlib.sha256(data).hexdigest())
