"""Metrics: accuracy and ROC AUC of the model, and a logistic-regression baseline on mean-pooled frames."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def binary_metrics(y_true, y_prob, threshold: float = 0.5) -> dict:
    """Accuracy at ``threshold``, ROC AUC and the record count ``n``.

    Accuracy is NaN with no records; AUC is NaN unless both classes are present.
    """
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    acc = float(np.mean((y_prob >= threshold).astype(int) == y_true)) if len(y_true) else float("nan")
    auc = float(roc_auc_score(y_true, y_prob)) if len(np.unique(y_true)) == 2 else float("nan")
    return {"accuracy": acc, "roc_auc": auc, "n": int(len(y_true))}


def mean_pool(x_padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean over each record's real frames (padding excluded). x: (N, T, F) uint8."""
    lengths = np.clip(np.asarray(lengths), 1, x_padded.shape[1])
    return x_padded.astype(np.float32).sum(axis=1) / lengths[:, None]


def logistic_baseline(x_train, len_train, y_train, x_val, len_val, y_val, seed: int) -> dict:
    """Standardised logistic regression on mean-pooled frames, fitted on train, scored on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    clf.fit(mean_pool(x_train, len_train), np.asarray(y_train).astype(int))
    prob = clf.predict_proba(mean_pool(x_val, len_val))[:, 1]
    return binary_metrics(y_val, prob)


# ------------------------------------------------------------------------- paired AUC comparison
COMPARISON_METHODS = ("delong", "bootstrap")


def _auc_from_ranks(ranks_pos: np.ndarray, m: int, n: int) -> np.ndarray:
    """Mann-Whitney AUC from the (mid)ranks of the positives within all scores (last axis)."""
    return (ranks_pos.sum(axis=-1) - m * (m + 1) / 2.0) / (m * n)


def delong_auc_difference(y_true, prob_a, prob_b) -> dict:
    """AUC of ``a`` and ``b`` on the same records and the variance of ``auc_a - auc_b`` (DeLong et al. 1988,
    in the fast form of Sun & Xu 2014; ties count one half)."""
    from scipy.stats import rankdata

    y = np.asarray(y_true).astype(int)
    preds = np.vstack([np.asarray(prob_a, np.float64), np.asarray(prob_b, np.float64)])
    pos, neg = preds[:, y == 1], preds[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.hstack([pos, neg]), axis=1)
    aucs = _auc_from_ranks(tz[:, :m], m, n)
    v01 = (tz[:, :m] - tx) / n  # per positive: share of negatives scored below it
    v10 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives scored above it
    s = np.cov(v01) / m + np.cov(v10) / n
    var = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    return {"auc_a": float(aucs[0]), "auc_b": float(aucs[1]), "difference": float(aucs[0] - aucs[1]),
            "variance": max(var, 0.0)}


def bootstrap_auc_differences(y_true, prob_a, prob_b, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``auc_a - auc_b`` on ``n_boot`` paired bootstrap resamples (classes resampled separately, so each
    resample keeps the numbers of positives and negatives); deterministic for a given ``seed``."""
    from scipy.stats import rankdata

    y = np.asarray(y_true).astype(int)
    a, b = np.asarray(prob_a, np.float64), np.asarray(prob_b, np.float64)
    pos_idx, neg_idx = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos_idx), len(neg_idx)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // (m + n))  # bound memory: chunk x (m + n) scores at a time
    out = []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        idx = np.hstack([rng.choice(pos_idx, (k, m)), rng.choice(neg_idx, (k, n))])
        diff = _auc_from_ranks(rankdata(a[idx], axis=1)[:, :m], m, n)
        diff -= _auc_from_ranks(rankdata(b[idx], axis=1)[:, :m], m, n)
        out.append(diff)
    return np.concatenate(out)


def compare_auc(y_true, challenger_prob, champion_prob, method: str = "delong", confidence: float = 0.95,
                n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of two models' ROC AUC on the same records.

    Returns both AUCs, ``difference`` = challenger - champion and its two-sided ``confidence`` interval
    ``[ci_low, ci_high]``: normal interval from the DeLong variance (``method="delong"``) or percentile
    interval of a stratified paired bootstrap (``"bootstrap"``, ``n_boot`` resamples, fixed ``seed``).
    """
    from scipy.stats import norm

    if method not in COMPARISON_METHODS:
        raise ValueError(f"unknown comparison method {method!r}; choose from {COMPARISON_METHODS}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    y = np.asarray(y_true).astype(int)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    out = {"method": method, "confidence": float(confidence), "n": int(len(y)), "n_pos": n_pos, "n_neg": n_neg}
    if n_pos == 0 or n_neg == 0:
        return out | {"challenger_auc": None, "champion_auc": None, "difference": None,
                      "ci_low": None, "ci_high": None}
    d = delong_auc_difference(y, challenger_prob, champion_prob)
    if method == "delong":
        half = float(norm.ppf(0.5 + confidence / 2.0)) * d["variance"] ** 0.5
        lo, hi = d["difference"] - half, d["difference"] + half
    else:
        diffs = bootstrap_auc_differences(y, challenger_prob, champion_prob, n_boot, seed)
        alpha = (1.0 - confidence) / 2.0
        lo, hi = (float(v) for v in np.quantile(diffs, [alpha, 1.0 - alpha]))
        out |= {"n_boot": n_boot, "bootstrap_seed": seed}
    return out | {
        "challenger_auc": d["auc_a"],
        "champion_auc": d["auc_b"],
        "difference": d["difference"],
        "ci_low": max(-1.0, lo),
        "ci_high": min(1.0, hi),
    }
