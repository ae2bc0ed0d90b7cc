"""Metrics: accuracy and ROC AUC of the model, and a logistic-regression baseline on mean-pooled frames."""

from __future__ import annotations

import numpy as np


def binary_metrics(y_true, y_prob, threshold: float = 0.5) -> dict:
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


def logistic_baseline(x_train, len_train, y_train, x_val, len_val, y_val, seed: int = 42) -> dict:
    """Standardised logistic regression on mean-pooled frames, fitted on train, scored on validation."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    clf.fit(mean_pool(x_train, len_train), np.asarray(y_train).astype(int))
    prob = clf.predict_proba(mean_pool(x_val, len_val))[:, 1]
    return binary_metrics(y_val, prob)
