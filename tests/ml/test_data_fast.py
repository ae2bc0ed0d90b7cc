"""The fast reader (msgspec + batched ``np.fromstring``) against the streaming reader as the reference.

Every file of the validation corpus and a set of embedding shapes chosen to fool the fast reader's byte
checks must give exactly the streaming reader's result: the same arrays and summary columns, or the fast
reader stands aside (returns None) and the streaming reader decides, with its precise error.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

from ml import data, data_fast
from ml.demo import make_records, write_json
from ml.errors import DataError
from tests.ml.validation.test_validate import RECORD, STRUCTURAL, _write

EMB = "audio_embedding"


def _same(fast: data.Records, slow: data.Records) -> None:
    assert fast.sha256 == slow.sha256
    for name in ("ids", "lengths", "labels"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert fast.frames.dtype == slow.frames.dtype == np.uint8
    np.testing.assert_array_equal(fast.frames, slow.frames)
    for col in data.SUMMARY_COLUMNS:
        a, b = fast.summary[col], slow.summary[col]
        assert a.dtype == b.dtype, col
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True, err_msg=col)
        else:
            assert list(a) == list(b), col


def _check(path) -> str:
    """Compare both readers on ``path``; returns which reader produced the result."""
    try:
        slow = data._read_records_streaming(path)
    except DataError as exc:
        assert data_fast.read_records_fast(path) is None  # only the streaming reader judges structure
        with pytest.raises(DataError) as again:
            data.read_records(path)
        assert str(again.value) == str(exc)
        return "error"
    fast = data_fast.read_records_fast(path)
    if fast is None:
        return "streaming"
    _same(fast, slow)
    return "fast"


@pytest.fixture(scope="module")
def base():
    recs = make_records(40, np.random.default_rng(7), True, set())
    for r in recs[:10]:
        while len(r[EMB]) < 10:
            r[EMB].append(list(r[EMB][-1]))
    return recs


@pytest.mark.parametrize(("case", "build", "rule"), STRUCTURAL, ids=[c[0] for c in STRUCTURAL])
def test_structural_corpus_matches_streaming(tmp_path, base, case, build, rule):
    assert _check(_write(tmp_path, build(base))) == "error"


@pytest.mark.parametrize(("case", "build", "split", "rules", "where"), RECORD, ids=[c[0] for c in RECORD])
def test_record_corpus_matches_streaming(tmp_path, base, case, build, split, rules, where):
    _check(_write(tmp_path, build(base)))


def _with_embedding(base, emb_text: str) -> str:
    """The base records as JSON text with record 3's embedding replaced by ``emb_text`` verbatim."""
    recs = [dict(r) for r in base]
    recs[3] = {**recs[3], EMB: "@@EMB@@"}
    return json.dumps(recs).replace('"@@EMB@@"', emb_text)


ROW = ",".join(["7"] * 128)
SHAPES = {
    "scalar_after_row": f"[[{ROW}],5]",
    "scalar_before_row": f"[5,[{ROW}]]",
    "scalar_between_rows": f"[[{ROW}],5,[{ROW}]]",
    "nested_in_row_start": f"[[[1],{ROW}]]",
    "nested_in_row_middle": f"[[1,[2],{ROW}]]",
    "nested_at_end": f"[[{ROW},[3]]]",
    "depth_three": f"[[[{ROW}]]]",
    "empty_row_first": f"[[],[{ROW}]]",
    "empty_row_last": f"[[{ROW}],[]]",
    "empty_outer": "[]",
    "ragged_rows": f"[[{ROW}],[{ROW},7]]",
    "narrow_rows": "[[1,2,3],[4,5,6]]",
    "value_256": f"[[{ROW[:-1]}256]]",
    "value_1000": f"[[{ROW[:-1]}1000]]",
    "value_wraps_int32_to_1": f"[[{ROW[:-1]}4294967297]]",
    "value_wraps_int32_to_negative": f"[[{ROW[:-1]}2147483648]]",
    "value_wraps_int32_to_7_in_a_short_row": f"[[{ROW[:-3]}4294967303],[{ROW}]]",
    "value_beyond_int64": f"[[{ROW[:-1]}99999999999999999999999]]",
    "rows_127_and_129": f"[[{ROW[:-2]}],[{ROW},7]]",
    "booleans": f"[[{ROW[:-1]}true]]",
    "float": f"[[{ROW[:-1]}7.0]]",
    "pretty_printed": "[\n  [ " + ROW.replace(",", ", ") + " ],\n  [" + ROW + "]\n]",
    "scalar": "17",
    "string": '"[[1]]"',
    "null": "null",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_embedding_shapes_match_streaming(tmp_path, base, shape):
    _check(_write(tmp_path, _with_embedding(base, SHAPES[shape])))


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 100 records, so a file of a few hundred spans several (what a 100x Kaggle file does)."""
    monkeypatch.setattr(data_fast, "_FAST_BATCH", 100)


def test_well_formed_files_take_the_fast_reader(tmp_path, base, small_batches):
    assert _check(_write(tmp_path, base)) == "fast"
    # pretty-printed, with a byte-order mark, and spread over several batches
    text = json.dumps(base, indent=2)
    assert _check(_write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "bom.json")) == "fast"
    many = make_records(350, np.random.default_rng(3), True, set())
    assert _check(write_json(many, tmp_path / "many.json")) == "fast"


def test_a_bad_embedding_is_measured_without_losing_its_neighbours(tmp_path, base):
    path = _write(tmp_path, _with_embedding(base, SHAPES["ragged_rows"]))
    rec = data.read_records(path)
    assert rec.lengths[3] == 0 and (np.delete(rec.lengths, 3) > 0).all()
    assert rec.summary["row_len_min"][3] == 128 and rec.summary["row_len_max"][3] == 129


def test_words_true_and_false_elsewhere_keep_the_frames(tmp_path, base):
    """A vid_id containing "true" must not make a valid embedding look like it holds booleans."""
    recs = [dict(r) for r in base]
    recs[2]["vid_id"] = "untrue_falsetto"
    path = _write(tmp_path, recs)
    for reader in (data_fast.read_records_fast, data._read_records_streaming):
        rec = reader(path)
        assert rec.lengths[2] == len(base[2][EMB]) and rec.summary["n_bad_values"][2] == 0


def test_worker_processes_give_the_same_records(tmp_path, small_batches):
    """A file of several batches read by forked workers equals the one-process result, bad records too."""
    recs = make_records(300, np.random.default_rng(5), True, set())
    recs[150]["audio_embedding"][0].append(7)  # a ragged record in the second batch
    recs[250]["audio_embedding"][0][0] = 4294967297  # wraps to 1 in int32, in the third batch
    path = write_json(recs, tmp_path / "train.json")
    one = data_fast.read_records_fast(path, workers=1)
    _same(data_fast.read_records_fast(path, workers=3), one)
    _same(one, data._read_records_streaming(path))
    assert one.lengths[150] == 0 and one.summary["value_max"][250] == 4294967297


def _recording_fork(monkeypatch) -> list:
    forked, real_fork = [], os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(data_fast.os, "fork", fork)
    return forked


def test_a_worker_that_dies_leaves_its_share_to_this_process(monkeypatch, caplog):
    forked, parent = _recording_fork(monkeypatch), os.getpid()

    def square(x):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)  # injected: the worker is killed mid-share
        return x * x

    assert data_fast._in_workers(square, list(range(10)), 3) == [x * x for x in range(10)]
    assert len(forked) == 2 and "parse worker" in caplog.text
    for pid in forked:  # reaped: no zombie left behind
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_an_error_here_stops_and_reaps_the_workers(monkeypatch):
    forked, parent = _recording_fork(monkeypatch), os.getpid()

    def fail_here(x):
        if os.getpid() == parent:
            raise ValueError("injected")
        time.sleep(120)  # a worker that would outlive the error unless it is stopped

    started = time.monotonic()
    with pytest.raises(ValueError, match="injected"):
        data_fast._in_workers(fail_here, [1, 2, 3], 3)
    assert time.monotonic() - started < 60 and len(forked) == 2
    for pid in forked:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
