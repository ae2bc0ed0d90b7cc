"""The fast reader (msgspec + batched ``np.fromstring``) against the streaming reader as the reference.

Every file of the validation corpus and a set of embedding shapes chosen to fool the fast reader's byte
checks must give exactly the streaming reader's result: the same arrays and summary columns, or the fast
reader stands aside (returns None) and the streaming reader decides, with its precise error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml import data
from ml.demo import make_records, write_json
from ml.errors import DataError
from tests.test_validation import RECORD, STRUCTURAL, _write

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
        assert data._read_records_fast(path) is None  # only the streaming reader judges structure
        with pytest.raises(DataError) as again:
            data.read_records(path)
        assert str(again.value) == str(exc)
        return "error"
    fast = data._read_records_fast(path)
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


def test_well_formed_files_take_the_fast_reader(tmp_path, base):
    assert _check(_write(tmp_path, base)) == "fast"
    # pretty-printed, with a byte-order mark, and spread over several batches
    text = json.dumps(base, indent=2)
    assert _check(_write(tmp_path, b"\xef\xbb\xbf" + text.encode(), "bom.json")) == "fast"
    many = make_records(9000, np.random.default_rng(3), True, set())
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
    for reader in (data._read_records_fast, data._read_records_streaming):
        rec = reader(path)
        assert rec.lengths[2] == len(base[2][EMB]) and rec.summary["n_bad_values"][2] == 0
