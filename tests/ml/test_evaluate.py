"""ml.evaluate in-process, against references written from the definitions: AUC as the share of
(positive, negative) pairs ranked right (ties one half), DeLong's variance from its structural components
computed pair by pair, and the bootstrap and DeLong intervals agreeing on a large sample."""

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import accuracy_score, roc_auc_score

from ml.data import MAXLEN, pad_frames
from ml.evaluate import (
    binary_metrics,
    bootstrap_auc_differences,
    compare_auc,
    delong_auc_difference,
    logistic_baseline,
    mean_pool,
)


def pairwise_components(y, s):
    """psi(pos_i, neg_j) = 1 if the positive scores higher, 1/2 on a tie, else 0; returns the AUC (mean of
    psi), V10 (row means, one per positive) and V01 (column means, one per negative)."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)


def delong_reference(y, a, b):
    """DeLong et al. (1988) as written: var(A - B) = (s10_aa + s10_bb - 2 s10_ab) / m + (same for s01) / n."""
    auc_a, v10_a, v01_a = pairwise_components(y, a)
    auc_b, v10_b, v01_b = pairwise_components(y, b)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    m, n = len(v10_a), len(v01_a)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return auc_a, auc_b, var


def tiny_case(seed, n=12, step=0.25):
    """Two correlated score vectors on ``n`` records with both classes, rounded to ``step`` so that ties occur."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, int)
    y[rng.choice(n, int(rng.integers(2, n - 1)), replace=False)] = 1
    a = np.round((y * 0.5 + rng.normal(0, 0.5, n)) / step) * step
    b = np.round((0.5 * a + rng.normal(0, 0.4, n)) / step) * step
    return y, a, b


# --------------------------------------------------------------------------------------- binary_metrics
def test_binary_metrics_match_sklearn_and_count_the_threshold_as_positive():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.5, 0.5, 0.9, 0.2, 0.7])
    m = binary_metrics(y, p)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5)) == pytest.approx(3 / 6)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["n"] == 6
    assert binary_metrics(y, p, threshold=0.95)["accuracy"] == pytest.approx(3 / 6)  # all called negative
    assert binary_metrics(y, p, threshold=0.05)["accuracy"] == pytest.approx(3 / 6)  # all called positive
    assert binary_metrics(y, p, threshold=0.8)["accuracy"] == pytest.approx(4 / 6)
    assert binary_metrics([1, 0], [0.5, 0.5])["accuracy"] == 0.5  # exactly the threshold counts as positive


def test_binary_metrics_edges_one_class_and_no_records():
    one = binary_metrics([1, 1, 1], [0.2, 0.8, 0.6])
    assert np.isnan(one["roc_auc"]) and one["accuracy"] == pytest.approx(2 / 3) and one["n"] == 3
    empty = binary_metrics([], [])
    assert np.isnan(empty["accuracy"]) and np.isnan(empty["roc_auc"]) and empty["n"] == 0


# ------------------------------------------------------------------------------------ mean_pool, baseline
def test_mean_pool_averages_only_the_real_frames_of_padded_records():
    rng = np.random.default_rng(0)
    lengths = np.array([1, 4, MAXLEN, MAXLEN + 3])  # short, padded, full, truncated to the last MAXLEN
    per_record = [rng.integers(0, 256, (k, 128)) for k in lengths]
    pooled = mean_pool(pad_frames(np.vstack(per_record).astype(np.uint8), lengths), lengths)
    want = [f[-MAXLEN:].mean(axis=0) for f in per_record]
    np.testing.assert_allclose(pooled, np.array(want), rtol=1e-6)
    assert mean_pool(np.zeros((1, MAXLEN, 128), np.uint8), np.array([0])).tolist() == [[0.0] * 128]  # no NaN


def test_logistic_baseline_learns_a_mean_signal_and_is_seeded():
    rng = np.random.default_rng(1)

    def data(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(100, 20, (n, MAXLEN, 128))
        x[y == 1, :, :4] += 30  # the class shifts the mean of four features
        return np.clip(x, 0, 255).astype(np.uint8), np.full(n, MAXLEN), y

    xt, lt, yt = data(200)
    xv, lv, yv = data(100)
    got = logistic_baseline(xt, lt, yt, xv, lv, yv, 42)
    assert got["roc_auc"] > 0.95 and got["n"] == 100
    assert logistic_baseline(xt, lt, yt, xv, lv, yv, 42) == got
    shuffled = logistic_baseline(xt, lt, rng.permutation(yt), xv, lv, yv, 42)  # labels carry no signal now
    assert shuffled["roc_auc"] < 0.8


# ------------------------------------------------------------------------------------------------ DeLong
@pytest.mark.parametrize("seed", range(8))
def test_delong_matches_the_pairwise_definition_on_tiny_inputs_with_ties(seed):
    y, a, b = tiny_case(seed)
    assert len(np.unique(a)) < len(a) and len(np.unique(b)) < len(b)  # there are ties to score one half
    auc_a, auc_b, var = delong_reference(y, a, b)
    d = delong_auc_difference(y, a, b)
    assert d["auc_a"] == pytest.approx(auc_a, abs=1e-12) == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert d["auc_b"] == pytest.approx(auc_b, abs=1e-12)
    assert d["difference"] == pytest.approx(auc_a - auc_b, abs=1e-12)
    assert d["variance"] == pytest.approx(var, rel=1e-9, abs=1e-15)


def test_delong_interval_is_the_normal_interval_of_the_reference_variance():
    y, a, b = tiny_case(3, n=40, step=0.05)
    auc_a, auc_b, var = delong_reference(y, a, b)
    for confidence in (0.8, 0.95):
        c = compare_auc(y, a, b, "delong", confidence=confidence)
        half = norm.ppf(0.5 + confidence / 2) * var**0.5
        assert c["challenger_auc"] == pytest.approx(auc_a) and c["champion_auc"] == pytest.approx(auc_b)
        assert c["ci_low"] == pytest.approx(auc_a - auc_b - half, abs=1e-12)
        assert c["ci_high"] == pytest.approx(auc_a - auc_b + half, abs=1e-12)
        assert (c["n"], c["n_pos"], c["n_neg"]) == (40, int(y.sum()), int((1 - y).sum()))


def test_the_interval_is_clipped_to_the_possible_range():
    y = np.array([1, 1, 0, 0])
    c = compare_auc(y, [0.9, 0.8, 0.2, 0.1], [0.1, 0.2, 0.8, 0.9], "delong", confidence=0.999)
    assert c["difference"] == 1.0  # perfect against perfectly wrong: zero variance, the interval is a point
    assert c["ci_low"] == c["ci_high"] == 1.0
    y, a, b = tiny_case(0, n=6)
    wide = compare_auc(y, a, b, "delong", confidence=0.9999999)
    assert -1.0 <= wide["ci_low"] <= wide["ci_high"] <= 1.0


def test_one_class_gives_no_comparison_and_bad_arguments_are_refused():
    c = compare_auc([1, 1, 1], [0.2, 0.3, 0.4], [0.5, 0.6, 0.7])
    assert (c["n"], c["n_pos"], c["n_neg"]) == (3, 3, 0)
    assert all(c[k] is None for k in ("challenger_auc", "champion_auc", "difference", "ci_low", "ci_high"))
    with pytest.raises(ValueError, match="unknown comparison method"):
        compare_auc([0, 1], [0.1, 0.9], [0.2, 0.8], method="wilcoxon")
    for bad in (0.0, 1.0, 95):
        with pytest.raises(ValueError, match="confidence"):
            compare_auc([0, 1], [0.1, 0.9], [0.2, 0.8], confidence=bad)


# --------------------------------------------------------------------------------------------- bootstrap
def test_bootstrap_resamples_each_class_separately():
    """A perfect model against a constant one: every resample that keeps both classes gives exactly
    1 - 0.5; a resample that lost a class would give NaN."""
    y = np.array([1] * 3 + [0] * 17)
    perfect = np.where(y == 1, 0.9, 0.1)
    diffs = bootstrap_auc_differences(y, perfect, np.full(len(y), 0.5), n_boot=500, seed=1)
    assert diffs.shape == (500,)
    assert np.all(diffs == 0.5)


def test_bootstrap_is_seeded_and_centred_on_the_observed_difference():
    y, a, b = tiny_case(4, n=300, step=0.01)
    first = bootstrap_auc_differences(y, a, b, n_boot=800, seed=3)
    np.testing.assert_array_equal(first, bootstrap_auc_differences(y, a, b, n_boot=800, seed=3))
    assert not np.array_equal(first, bootstrap_auc_differences(y, a, b, n_boot=800, seed=4))
    observed = delong_auc_difference(y, a, b)
    assert first.mean() == pytest.approx(observed["difference"], abs=0.2 * observed["variance"] ** 0.5)
    c = compare_auc(y, a, b, "bootstrap", confidence=0.9, n_boot=800, seed=3)
    assert (c["ci_low"], c["ci_high"]) == pytest.approx(tuple(np.quantile(first, [0.05, 0.95])), abs=1e-12)
    assert c["n_boot"] == 800 and c["bootstrap_seed"] == 3
    assert c["difference"] == pytest.approx(observed["difference"])  # the point estimate is not resampled


def test_bootstrap_and_delong_intervals_agree_on_a_large_sample():
    rng = np.random.default_rng(11)
    n = 4000
    y = (rng.random(n) < 0.3).astype(int)
    a = y + rng.normal(0, 0.9, n)
    b = 0.6 * a + y * 0.3 + rng.normal(0, 0.7, n)
    de = compare_auc(y, a, b, "delong")
    bs = compare_auc(y, a, b, "bootstrap", n_boot=1500, seed=0)
    half_de = (de["ci_high"] - de["ci_low"]) / 2
    half_bs = (bs["ci_high"] - bs["ci_low"]) / 2
    assert half_bs == pytest.approx(half_de, rel=0.1)
    assert (bs["ci_low"] + bs["ci_high"]) / 2 == pytest.approx(de["difference"], abs=0.15 * half_de)


# ------------------------------------------------------------------------------------------- paired AUC
def _two_models(n=400, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    a = y + rng.normal(0, 0.7, n)
    b = y + rng.normal(0, 0.8, n) + 0.4 * (a - y)  # correlated, as two models on the same records are
    return y, np.round(a, 1), np.round(b, 1)  # rounding makes ties


def test_delong_matches_sklearn_and_agrees_with_the_bootstrap():
    y, a, b = _two_models()
    d = delong_auc_difference(y, a, b)
    assert d["auc_a"] == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert d["auc_b"] == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    boot = bootstrap_auc_differences(y, a, b, n_boot=4000, seed=0)
    assert np.std(boot, ddof=1) == pytest.approx(d["variance"] ** 0.5, rel=0.1)
    de, bs = compare_auc(y, a, b, "delong"), compare_auc(y, a, b, "bootstrap")
    assert de["difference"] == bs["difference"]
    assert de["ci_low"] == pytest.approx(bs["ci_low"], abs=0.01)
    assert de["ci_high"] == pytest.approx(bs["ci_high"], abs=0.01)
    assert compare_auc(y, a, b, "bootstrap") == bs  # seeded: deterministic


def test_delong_by_hand_on_a_tiny_case():
    # 2 positives, 2 negatives. Model a: pos (0.9, 0.4), neg (0.5, 0.1) -> pairs won 3 of 4 -> AUC 0.75.
    # Model b ranks perfectly -> AUC 1. Structural components (DeLong):
    #   a: V10 (per positive) = (1, 0.5), V01 (per negative) = (0.5, 1); b: all 1 (zero variance)
    #   var(a - b) = var(V10_a)/m + var(V01_a)/n = 0.125/2 + 0.125/2 = 0.125
    y = np.array([1, 1, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.1])
    b = np.array([0.9, 0.8, 0.2, 0.1])
    d = delong_auc_difference(y, a, b)
    assert d["auc_a"] == 0.75 and d["auc_b"] == 1.0
    assert d["variance"] == pytest.approx(0.125)
    c = compare_auc(y, a, b, "delong", confidence=0.95)
    assert c["ci_low"] == pytest.approx(-0.25 - 1.959964 * 0.125**0.5, abs=1e-5)
    same = compare_auc(y, a, a)
    assert same["difference"] == same["ci_low"] == same["ci_high"] == 0.0
