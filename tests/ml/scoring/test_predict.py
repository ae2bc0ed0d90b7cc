"""ml.scoring.predict in-process: a tiny saved Keras model whose output is known in closed form scores a test file
through the real validation, padding and CSV writing; bad model files and bad inputs fail as TurkeyErrors."""

import csv

import numpy as np
import pytest

from ml.data import MAXLEN, N_FEATURES
from ml.demo import make_records, write_json
from ml.errors import DataError, TurkeyError
from ml.scoring.predict import score_file

# A linear read-out of two padded time steps: the first (index 0) and the last (index MAXLEN - 1).
RNG = np.random.default_rng(5)
W_FIRST = RNG.normal(0, 1e-3, N_FEATURES)
W_LAST = RNG.normal(0, 1e-3, N_FEATURES)
BIAS = -0.1


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory):
    """``model.keras``: sigmoid(W_FIRST . x[0] + W_LAST . x[MAXLEN-1] + BIAS) of the padded (MAXLEN, 128) input."""
    import keras

    inp = keras.Input((MAXLEN, N_FEATURES))
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inp, dense(keras.layers.Flatten()(inp)))
    kernel = np.zeros((MAXLEN * N_FEATURES, 1), np.float32)
    kernel[:N_FEATURES, 0] = W_FIRST
    kernel[-N_FEATURES:, 0] = W_LAST
    dense.set_weights([kernel, np.array([BIAS], np.float32)])
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    return path


def expected_probability(frames: list) -> float:
    """What the linear model gives for one record, worked out from its frames: Keras' pre-padding puts the
    last frame at the last step, and the first step holds a frame only when the record fills all MAXLEN."""
    x = np.asarray(frames, np.float64)
    first = x[-MAXLEN] if len(x) >= MAXLEN else np.zeros(N_FEATURES)
    return float(1.0 / (1.0 + np.exp(-(W_FIRST @ first + W_LAST @ x[-1] + BIAS))))


def test_scores_every_record_in_input_order_with_pre_padding(tmp_path, linear_model):
    records = make_records(30, np.random.default_rng(1), False, set())
    lengths = {len(r["audio_embedding"]) for r in records}
    assert MAXLEN in lengths and min(lengths) < MAXLEN  # both full and padded records are scored
    write_json(records, tmp_path / "test.json")
    n = score_file(linear_model, tmp_path / "test.json", tmp_path / "out" / "submission.csv")
    assert n == len(records)
    with open(tmp_path / "out" / "submission.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["vid_id", "is_turkey"]
    assert [r[0] for r in rows[1:]] == [r["vid_id"] for r in records]
    got = np.array([float(r[1]) for r in rows[1:]])
    want = np.array([expected_probability(r["audio_embedding"]) for r in records])
    np.testing.assert_allclose(got, want, atol=2e-6)  # the CSV keeps 6 decimals
    assert all(len(r[1].split(".")[1]) == 6 for r in rows[1:])
    assert got.std() > 0.01  # the records really differ: a constant output would not pass by luck


def test_a_missing_or_unreadable_model_is_a_turkey_error(tmp_path, demo_dir):
    with pytest.raises(TurkeyError, match="no such model file"):
        score_file(tmp_path / "none.keras", demo_dir / "test.json", tmp_path / "s.csv")
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(TurkeyError, match="cannot load the model"):
        score_file(bad, demo_dir / "test.json", tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_an_invalid_test_file_is_refused_before_scoring(tmp_path, linear_model):
    records = make_records(5, np.random.default_rng(2), False, set())
    records[3]["audio_embedding"][0][7] = 300  # not a uint8 value
    write_json(records, tmp_path / "test.json")
    with pytest.raises(DataError, match=r"test\.json.*#3"):
        score_file(linear_model, tmp_path / "test.json", tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()
