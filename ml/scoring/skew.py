"""Training-serving skew: how far a batch's inputs are from what the champion was trained on.

At training, :func:`training_profile` records, for each of the 128 embedding dimensions of the mean-pooled
frames (a record's mean over its real frames), the decile edges of the training records and each bin's
share (``profile.json`` in the version folder). At scoring, :func:`skew` bins the batch the same way and
computes the population stability index per dimension, ``PSI = sum (q - p) ln(q / p)`` over the bins (p:
training shares, q: batch shares, both smoothed by half a record per bin).

A batch drawn from the training distribution still has a PSI above 0: with b bins, sampling noise alone
gives about ``(b - 1) (1/n_batch + 1/n_train)`` per dimension (PSI is close to a chi-square statistic
divided by the sample size). So the figure a threshold applies to is the **excess**: the mean PSI over the
dimensions minus that noise level. It is near 0 for unshifted batches of any size and grows with a shift;
the default threshold (``ScoringConfig.max_skew``) comes from ``python -m bench.scoring --skew`` on
shifted and unshifted demo batches (docs/scoring.md).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

BINS = 10
PROFILE_FILE = "profile.json"
#: A dimension whose own PSI is above this counts as shifted in the summary (a common rule of thumb).
DIMENSION_PSI = 0.25


def pooled(x_padded, lengths) -> np.ndarray:
    """The features profiles and skew are about: each record's mean over its real (kept) frames, (n, 128)."""
    from ml.evaluate import mean_pool

    return mean_pool(np.asarray(x_padded), np.asarray(lengths))


def _bin_counts(pooled: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(BINS, dims) counts of ``pooled`` (n, dims) in the bins that ``edges`` (BINS - 1, dims) bound."""
    counts = np.empty((BINS, pooled.shape[1]), dtype=np.int64)
    for d in range(pooled.shape[1]):
        counts[:, d] = np.bincount(np.searchsorted(edges[:, d], pooled[:, d], side="right"), minlength=BINS)
    return counts


def _shares(counts: np.ndarray, n: int) -> np.ndarray:
    return (counts + 0.5) / (n + 0.5 * BINS)


def training_profile(features: np.ndarray) -> dict:
    """The profile of the training records' :func:`pooled` features: per dimension the decile edges and each
    bin's count; JSON-able."""
    edges = np.quantile(features, np.linspace(0, 1, BINS + 1)[1:-1], axis=0)
    return {"format": 1, "bins": BINS, "n": int(len(features)), "edges": edges.round(6).tolist(),
            "counts": _bin_counts(features, edges).tolist(), "features": "mean-pooled frames"}


def skew(profile: dict | None, features: np.ndarray) -> dict:
    """The skew of a batch's :func:`pooled` features against a training ``profile`` (None: the champion
    predates profiles). Returns ``{"psi_mean", "psi_max", "noise", "excess", "shifted_dims", "n",
    "n_train"}`` (``{"unknown": reason}`` without a profile or records)."""
    if not profile:
        return {"unknown": "the champion was registered before versions recorded a training profile"}
    n = int(len(features))
    if n == 0:
        return {"unknown": "the batch has no records"}
    edges, n_train = np.asarray(profile["edges"], dtype=np.float64), int(profile["n"])
    p = _shares(np.asarray(profile["counts"], dtype=np.float64), n_train)
    q = _shares(_bin_counts(np.asarray(features), edges), n)
    psi = ((q - p) * np.log(q / p)).sum(axis=0)
    noise = (BINS - 1) * (1.0 / n + 1.0 / n_train)
    return {"psi_mean": round(float(psi.mean()), 5), "psi_max": round(float(psi.max()), 5),
            "noise": round(noise, 5), "excess": round(float(psi.mean()) - noise, 5),
            "shifted_dims": int((psi > DIMENSION_PSI).sum()), "n": n, "n_train": n_train}


def describe(figure: dict) -> str:
    """One line for a skew figure."""
    if "unknown" in figure:
        return f"skew unknown ({figure['unknown']})"
    return (f"skew: mean PSI {figure['psi_mean']:.4f} vs {figure['noise']:.4f} from sampling alone (excess "
            f"{figure['excess']:+.4f}), {figure['shifted_dims']} of 128 dimensions above PSI {DIMENSION_PSI}, "
            f"n={figure['n']}")
