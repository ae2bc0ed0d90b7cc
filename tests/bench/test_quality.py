"""bench.quality: the scoring helpers, a small case's baseline, and section 3 rendered with its figures (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import common, quality


def test_calibration_and_threshold_helpers():
    y = np.array([0, 0, 1, 1])
    assert quality.expected_calibration_error(y, np.array([0.0, 0.0, 1.0, 1.0])) == 0.0
    assert quality.expected_calibration_error(y, np.full(4, 0.75)) == pytest.approx(0.25)  # |0.5 - 0.75|, one bin
    assert quality.best_threshold(y, np.array([0.1, 0.2, 0.3, 0.4])) == (0.3, 1.0)  # ranks perfectly, all below 0.5
    s = quality.score(y, np.array([0.1, 0.6, 0.7, 0.9]), y, np.array([0.1, 0.2, 0.3, 0.4]))
    assert s["val"]["accuracy"] == 0.75 and not s["val"]["passes_gate"] and s["val"]["val_tuned_threshold"] == 0.7
    assert s["holdout"]["accuracy"] == 0.5 and s["holdout"]["best_accuracy"] == 1.0
    assert s["holdout"]["accuracy_at_val_tuned_threshold"] == 0.5


def test_the_gate_is_the_dags_default():
    from ml.config import RunConfig

    assert RunConfig().min_val_accuracy == quality.MIN_VAL_ACCURACY


def test_a_small_case_splits_like_the_pipeline_and_scores_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "OUT", tmp_path)
    case = quality.Case("temporal", n_train=120, n_holdout=60)
    assert len(case.y_hold) == 60 and len(case.split["y_train"]) + len(case.split["y_val"]) == 120
    b = case.baseline(42)
    assert 0 <= b["holdout"]["roc_auc"] <= 1 and b["epochs"] is None and "passes_gate" in b["val"]
    avg = case.average([{"p_val": np.full(len(case.split["y_val"]), p), "p_hold": np.full(60, p), "epochs": 3,
                         "train_seconds": 1.0} for p in (0.2, 0.8)])
    assert avg["epochs"] == 6 and avg["holdout"]["accuracy"] == float(np.mean(case.y_hold == 1))  # mean 0.5 -> all 1


def _run(model, seed, auc, acc, val_acc, epochs=10):
    return {"model": model, "seed": seed, "val": {"roc_auc": auc, "accuracy": val_acc, "passes_gate": val_acc >= 0.85},
            "holdout": {"roc_auc": auc, "accuracy": acc, "ece": 0.02}, "epochs": epochs, "selected_epoch": 4,
            "train_seconds": 1.0}


def _family(default_accs):
    runs = []
    for i, (seed, a) in enumerate(zip((42, 43, 44), default_accs, strict=True)):
        runs += [_run("logistic baseline", seed, 0.52, 0.55, 0.56, None), _run("seed recipe", seed, 0.80, 0.75, 0.74),
                 _run("default recipe", seed, 0.96 - 0.01 * i, a, a)]
    return {"runs": runs, "n_train_file": 1195, "n_train": 896, "n_val": 299, "n_holdout": 1196, "holdout_seed": 7}


def test_section_3_shows_the_worst_seed_and_the_gate_per_family():
    r = {"families": {"presence": _family([0.95, 0.94, 0.93]), "temporal": _family([0.95, 0.80, 0.93])}}
    doc = quality.render(r)
    rows = [ln for ln in doc.splitlines() if ln.startswith("| default recipe |")]
    assert "**presence family**" in doc and "Seeds 42, 43, 44" in doc and len(rows) == 2
    assert "0.9400 / 0.9300" in rows[0] and "| 3/3 |" in rows[0] and "| 4:10/4:10/4:10 |" in rows[0]
    assert "0.9400 / 0.8000" in rows[1] and "| 2/3 |" in rows[1]
    auc_p, gate_p, _, gate_t = quality.figures(r)
    assert auc_p.value == pytest.approx(0.94) and auc_p.target == pytest.approx(0.80) and auc_p.verdict() == "met"
    assert gate_p.verdict() == "met" and gate_t.verdict() == "**NOT met**"
