import json
from pathlib import Path

import numpy as np
import pytest

from ml.data import pad_frames, read_records
from ml.demo import make_records, write_json
from ml.prepare import split_and_pad, split_roles


@pytest.mark.parametrize("n_frames", range(1, 16))
def test_padding_matches_keras_pad_sequences(n_frames):
    from keras.utils import pad_sequences

    rng = np.random.default_rng(n_frames)
    seqs = [rng.integers(0, 256, (k, 128)) for k in (n_frames, 1, 10, max(1, n_frames - 3))]
    expected = pad_sequences([s.tolist() for s in seqs], maxlen=10)
    frames = np.concatenate(seqs).astype(np.uint8)
    lengths = np.array([len(s) for s in seqs])
    got = pad_frames(frames, lengths, maxlen=10)
    assert got.dtype == np.uint8 and got.shape == (4, 10, 128)
    np.testing.assert_array_equal(got, expected)


def test_read_records_compact_arrays(tmp_path):
    rng = np.random.default_rng(0)
    recs = make_records(50, rng, True, set())
    path = write_json(recs, tmp_path / "train.json")
    r = read_records(path)
    assert len(r) == 50
    assert r.frames.dtype == np.uint8 and r.frames.shape == (sum(len(x["audio_embedding"]) for x in recs), 128)
    assert list(r.ids) == [x["vid_id"] for x in recs]
    assert list(r.labels) == [x["is_turkey"] for x in recs]
    first = np.array(recs[0]["audio_embedding"], dtype=np.uint8)
    np.testing.assert_array_equal(r.frames[: len(first)], first)


def test_reader_handles_records_across_chunk_edges(tmp_path, monkeypatch):
    import ml.data
    import ml.json_stream

    monkeypatch.setattr(ml.json_stream, "_CHUNK", 97)  # force many refills mid-record
    recs = make_records(30, np.random.default_rng(1), True, set())
    path = tmp_path / "train.json"
    path.write_text(json.dumps(recs, indent=1))
    r = read_records(path)
    assert list(r.ids) == [x["vid_id"] for x in recs]
    assert int(r.lengths.sum()) == sum(len(x["audio_embedding"]) for x in recs)


def test_split_is_repeatable_and_independent_of_record_order():
    ids = np.array([f"v{i}" for i in range(100)], dtype=object)
    y = np.array([0] * 60 + [1] * 40)
    a = split_roles(ids, y, 0.25)
    b = split_roles(ids[::-1], y[::-1], 0.25)
    assert set(ids[a[1]]) == set(ids[::-1][b[1]])
    assert not set(a[0]) & set(a[1]) and len(a[0]) + len(a[1]) == 100


def test_split_and_pad_shapes(demo_dir):
    r = read_records(demo_dir / "train.json")
    d = split_and_pad(r, 0.25)
    assert d["x_train"].shape[1:] == (10, 128) and d["x_val"].dtype == np.uint8
    assert len(d["x_train"]) + len(d["x_val"]) == len(r)


def test_sha256_is_computed_while_parsing(tmp_path, monkeypatch):
    import hashlib

    import ml.data
    import ml.json_stream

    monkeypatch.setattr(ml.json_stream, "_CHUNK", 211)
    path = write_json(make_records(12, np.random.default_rng(5), True, set()), tmp_path / "train.json")
    assert read_records(path).sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
