"""Held-out quality of recipes on demo data, shared by BENCHMARKS.md section 3 and ``bench.recipe_sweep``.

One *case* is a demo family's Kaggle-size train file (1,195 records, generator seed 0) split 75/25 by
the project's own split (:func:`ml.prepare.split_and_pad`: by a hash of vid_id, the same split for every
seed; the seed moves weights and shuffling), plus a labelled held-out
file of 1,196 records from the same generator and family (ids disjoint from train) that no recipe
sees. Each trained model is scored on the validation split (what the accuracy gate scores) and on the
held-out file: ROC AUC, accuracy at the published 0.5 threshold, and calibration figures (expected
calibration error; the best accuracy any threshold reaches on the held-out file; the held-out accuracy
at the threshold that maximises validation accuracy).
"""

from __future__ import annotations

import time

import numpy as np

from bench.common import KAGGLE_TEST, KAGGLE_TRAIN, ensure_demo, ensure_holdout

# The DAG's default accuracy gate (``min_val_accuracy`` in dags/turkey_training.py; a test keeps them equal).
DEFAULT_MIN_VAL_ACCURACY = 0.85
THRESHOLD = 0.5  # the published decision threshold (ml.evaluate.binary_metrics' default)


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """Mean |observed positive rate - mean probability| over equal-width probability bins, weighted by count."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(err / len(y))


def best_threshold(y, p) -> tuple[float, float]:
    """(threshold, accuracy): the cut among the predicted probabilities with the highest accuracy."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    cuts = np.unique(np.concatenate([p, [THRESHOLD]]))
    accs = np.array([np.mean((p >= c).astype(int) == y) for c in cuts])
    i = int(np.argmax(accs))
    return float(cuts[i]), float(accs[i])


def score(y_val, p_val, y_hold, p_hold) -> dict:
    """Validation and held-out metrics of one model's probabilities (see the module doc)."""
    from ml.evaluate import binary_metrics

    val, hold = binary_metrics(y_val, p_val, THRESHOLD), binary_metrics(y_hold, p_hold, THRESHOLD)
    t_val, _ = best_threshold(y_val, p_val)
    hold["ece"] = expected_calibration_error(y_hold, p_hold)
    hold["best_accuracy"] = best_threshold(y_hold, p_hold)[1]
    hold["accuracy_at_val_tuned_threshold"] = float(np.mean((np.asarray(p_hold) >= t_val).astype(int) == y_hold))
    val["val_tuned_threshold"] = t_val
    val["passes_gate"] = bool(val["accuracy"] >= DEFAULT_MIN_VAL_ACCURACY)
    return {"val": val, "holdout": hold}


class Case:
    """One demo family's train file and held-out file, parsed and padded once."""

    def __init__(self, family: str, n_train: int = KAGGLE_TRAIN, n_holdout: int = KAGGLE_TEST, workers: int = 2):
        from ml.data import pad_frames, read_records

        name = f"kaggle-{n_train // KAGGLE_TRAIN}x" if n_train % KAGGLE_TRAIN == 0 else f"n{n_train}"
        if family != "presence":
            name += f"-{family}"
        self.family = family
        self.data = ensure_demo(name, n_train, n_holdout, seed=0, workers=workers, family=family)
        self.hold_meta = ensure_holdout(self.data["train"], n_holdout, family=family)
        self.train = read_records(self.data["train"])
        hold = read_records(self.hold_meta["path"])
        if (hold.labels < 0).any():
            raise SystemExit("held-out file has unlabelled records")
        self.x_hold, self.len_hold, self.y_hold = pad_frames(hold.frames, hold.lengths), hold.lengths, hold.labels.astype(int)
        self._split: dict | None = None

    def split(self) -> dict:
        """The project's own 75/25 split of the train file (computed once)."""
        from ml.prepare import split_and_pad

        if self._split is None:
            self._split = split_and_pad(self.train, 0.25)
        return self._split

    def baseline(self, seed: int) -> dict:
        """The logistic baseline (mean-pooled frames) fitted on the split's train part, scored like a model."""
        from ml.evaluate import logistic_baseline

        d = self.split()
        val = logistic_baseline(d["x_train"], d["len_train"], d["y_train"], d["x_val"], d["len_val"], d["y_val"], seed)
        hold = logistic_baseline(d["x_train"], d["len_train"], d["y_train"], self.x_hold, self.len_hold, self.y_hold, seed)
        val["passes_gate"] = bool(val["accuracy"] >= DEFAULT_MIN_VAL_ACCURACY)
        return {"val": val, "holdout": hold}

    def train_recipe(self, recipe) -> dict:
        """Train ``recipe`` and score it; the probabilities are included (for averaging members)."""
        from ml.train import fit, predict

        d = self.split()
        t0 = time.perf_counter()
        model, history, seconds = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], recipe)
        p_val, p_hold = predict(model, d["x_val"]), predict(model, self.x_hold)
        return {
            **score(d["y_val"], p_val, self.y_hold, p_hold),
            "epochs": len(history.get("loss", [])),
            "selected_epoch": history.get("selected_epoch"),
            "train_seconds": seconds,
            "wall_seconds": time.perf_counter() - t0,
            "p_val": p_val,
            "p_hold": p_hold,
        }
