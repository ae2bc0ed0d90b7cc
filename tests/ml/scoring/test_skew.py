"""ml.scoring.skew: the excess of the mean PSI over sampling noise is near 0 for batches drawn like the
training data, whatever their size, and large for shifted ones; no profile means 'unknown'."""

import numpy as np
import pytest

from ml.data import pad_frames, read_records
from ml.demo import make_records, write_json
from ml.scoring.skew import describe, pooled, skew, training_profile


def _features(tmp_path, records, name):
    rec = read_records(write_json(records, tmp_path / f"{name}.json"))
    return pooled(pad_frames(rec.frames, rec.lengths), rec.lengths)


def _offset(records, by):
    return [{**r, "audio_embedding": [[min(255, v + by) for v in f] for f in r["audio_embedding"]]} for r in records]


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    train = make_records(900, np.random.default_rng(1), True, set())
    return training_profile(_features(tmp_path_factory.mktemp("profile"), train, "train"))


@pytest.mark.parametrize("n", [50, 300, 1196])
def test_unshifted_batches_stay_near_zero_and_shifted_ones_do_not(tmp_path, profile, n):
    batch = make_records(n, np.random.default_rng(100 + n), False, set())
    same = skew(profile, _features(tmp_path, batch, "same"))
    shifted = skew(profile, _features(tmp_path, _offset(batch, 10), "shifted"))
    assert abs(same["excess"]) < 0.05 and same["n"] == n and same["n_train"] == 900
    assert shifted["excess"] > 0.3 and shifted["shifted_dims"] > same["shifted_dims"]
    assert same["psi_mean"] == pytest.approx(same["excess"] + same["noise"], abs=1e-4)
    assert "excess" in describe(shifted)


def test_the_default_threshold_separates_them(tmp_path, profile):
    from ml.config import ScoringConfig

    threshold = ScoringConfig().max_skew
    batch = make_records(300, np.random.default_rng(7), False, set())
    assert skew(profile, _features(tmp_path, batch, "a"))["excess"] < threshold
    assert skew(profile, _features(tmp_path, _offset(batch, 10), "b"))["excess"] > threshold


def test_without_a_profile_or_records_the_skew_is_unknown(profile):
    assert "unknown" in skew(None, np.zeros((5, 128), np.float32))
    assert "unknown" in skew(profile, np.zeros((0, 128), np.float32))
    assert describe(skew(None, np.zeros((5, 128)))).startswith("skew unknown")
