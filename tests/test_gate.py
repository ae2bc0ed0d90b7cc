"""The repeatable split (issue 9.1) and the champion/challenger gate with its uncertainty (9.2, 9.3, 16.2)."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.errors import TurkeyError
from ml.evaluate import bootstrap_auc_differences, compare_auc, delong_auc_difference
from ml.pipeline import build_manifest, champion_gate, same_training, version_trained_ids, write_record_ids
from ml.prepare import role_scores, split_roles


def _ids(n, start=0):
    return np.array([f"vid{i:07d}" for i in range(start, start + n)], dtype=object)


# ------------------------------------------------------------------------------------------- split
def test_adding_and_reordering_records_never_moves_an_old_record():
    rng = np.random.default_rng(0)
    ids, y = _ids(800), (rng.random(800) < 0.4).astype(int)
    tr, va = split_roles(ids, y, 0.25)
    role = {i: "val" for i in ids[va]} | {i: "train" for i in ids[tr]}
    grown_ids = np.concatenate([ids, _ids(700, start=10_000)])
    grown_y = np.concatenate([y, (rng.random(700) < 0.4).astype(int)])
    order = rng.permutation(len(grown_ids))
    tr2, va2 = split_roles(grown_ids[order], grown_y[order], 0.25)
    role2 = {i: "val" for i in grown_ids[order][va2]} | {i: "train" for i in grown_ids[order][tr2]}
    assert all(role2[i] == r for i, r in role.items())
    assert not set(tr2) & set(va2) and len(tr2) + len(va2) == len(grown_ids)


def test_split_shares_and_class_presence():
    rng = np.random.default_rng(1)
    ids, y = _ids(4000), (rng.random(4000) < 0.4).astype(int)
    tr, va = split_roles(ids, y, 0.25)
    assert abs(len(va) / len(ids) - 0.25) < 0.02
    for cls in (0, 1):  # each class sends ~25% of its records to validation
        share = (y[va] == cls).sum() / (y == cls).sum()
        assert abs(share - 0.25) < 0.03
    # all clips of one video share a role
    dup_ids = np.concatenate([ids[:50], ids[:50]])
    _, va_dup = split_roles(dup_ids, np.zeros(100, int) | (np.arange(100) % 2), 0.5)
    in_val = set(va_dup)
    assert all((i in in_val) == (i + 50 in in_val) for i in range(50))
    # a larger share only adds validation records
    _, va30 = split_roles(ids, y, 0.30)
    assert set(va) <= set(va30)


def test_split_ignores_labels_and_refuses_a_class_without_validation_records():
    scores = role_scores(_ids(200))
    assert ((scores >= 0) & (scores < 1)).all()
    ids = _ids(200)
    # relabelling (both classes keep both roles) moves no record
    y_a, y_b = np.arange(200) % 2, (np.arange(200) // 2) % 2
    tr_a, va_a = split_roles(ids, y_a, 0.25)
    tr_b, va_b = split_roles(ids, y_b, 0.25)
    assert list(tr_a) == list(tr_b) and list(va_a) == list(va_b)
    y = np.zeros(200, int)
    train_only = [i for i, s in enumerate(scores) if s >= 0.25][:3]  # three positives, all in training
    y[train_only] = 1
    with pytest.raises(TurkeyError, match=r"train\.json: class is_turkey=1 has 3 record\(s\).*validation share"):
        split_roles(ids, y, 0.25, source="train.json")
    with pytest.raises(TurkeyError, match="val_fraction"):
        split_roles(ids, y, 1.0)


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


# ------------------------------------------------------------------------------------------- the rule
def _metrics(lo, hi=0.03, n=300, diff=None):
    diff = (lo + hi) / 2 if diff is None else diff
    cmp = {"method": "delong", "confidence": 0.95, "n": n, "n_pos": n // 3, "n_neg": n - n // 3,
           "challenger_auc": 0.95 + diff, "champion_auc": 0.95, "difference": diff, "ci_low": lo, "ci_high": hi,
           "n_excluded_champion_trained": 0}
    return {"val_auc": 0.96, "champion_comparison": cmp}


def test_rule_at_its_edges():
    tol = 0.005
    assert champion_gate(_metrics(-0.005), "v1", tol)["promote"]  # lower end exactly -tolerance
    low = champion_gate(_metrics(-0.0051), "v1", tol)
    assert not low["promote"] and low["decision"] == "keep_champion"
    assert "95% CI [-0.0051, +0.0300]" in low["reason"] and "delong" in low["reason"] and "n=300" in low["reason"]
    forced = champion_gate(_metrics(-0.2), "v1", tol, force_promote=True)
    assert forced["promote"] and forced["reason"].startswith("forced by operator (keep_champion")
    assert champion_gate({"val_auc": 0.9}, None, tol)["reason"] == "no champion yet"


def test_too_few_unseen_records_or_unknown_champion_ids_refuse_the_comparison():
    few = champion_gate(_metrics(0.01, n=99), "v1", 0.005, min_records=100)
    assert not few["promote"] and few["decision"] == "no_comparison" and "only 99" in few["reason"]
    assert champion_gate(_metrics(0.01, n=100), "v1", 0.005, min_records=100)["promote"]
    unknown = champion_gate({"val_auc": 0.99}, "v0", 0.005)
    assert not unknown["promote"] and "does not record which records it trained on" in unknown["reason"]
    assert champion_gate({"val_auc": 0.99}, "v0", 0.005, force_promote=True)["promote"]


def test_same_inputs_need_a_challenger_better_beyond_the_uncertainty():
    tied = champion_gate(_metrics(0.0, 0.0, diff=0.0), "v1", 0.005, same_inputs=True)
    assert not tied["promote"] and tied["decision"] == "keep_champion" and "same inputs and recipe" in tied["reason"]
    assert not champion_gate(_metrics(-0.001), "v1", 0.005, same_inputs=True)["promote"]
    assert champion_gate(_metrics(0.0001), "v1", 0.005, same_inputs=True)["promote"]
    assert champion_gate(_metrics(0.0, 0.0, diff=0.0), "v1", 0.005, same_inputs=True, force_promote=True)["promote"]


def test_a_damaged_champion_forced_past_is_recorded_not_called_no_champion():
    d = champion_gate({"val_auc": 0.9}, None, 0.005, force_promote=True, champion_problem="registry damaged: x")
    assert d["promote"] and d["champion_problem"] == "registry damaged: x"
    assert d["reason"] == "forced by operator; the champion could not be compared: registry damaged: x"
    assert champion_gate({"val_auc": 0.9}, None, 0.005)["champion_problem"] is None


def test_the_manifest_is_what_same_training_reads_back():
    """build_manifest (registry and `turkey train` alike): inputs, settings, metrics, gate; a retrain with the
    same digests, recipe and validation share is recognised from it."""
    params = {"train_file": "landing/train.json", "test_file": "landing/test.json", "val_fraction": 0.25, "seed": 1}
    validated = {"train_sha256": "a" * 64, "test_sha256": "b" * 64, "report_html": {"train": "t.html"}}
    trained = {"device": "CPU", "record_ids": {"n_train_ids": 3}, "champion_version": "v1", "champion_problem": None}
    metrics = {"val_accuracy": 0.9, "val_auc": 0.95, "recipe": {"name": "default", "seed": 1}}
    gate = champion_gate(metrics, "v1", 0.005)
    man = json.loads(json.dumps(build_manifest(params, validated, trained, metrics, gate, "turkey_training", "r1")))
    assert man["run_id"] == "r1" and man["compared_with"] == "v1" and man["gate"]["decision"] == "no_comparison"
    assert man["metrics"] == metrics and man["params"] == params and man["device"] == "CPU"
    assert man["inputs"] == {"train_file": "landing/train.json", "test_file": "landing/test.json",
                             "train_sha256": "a" * 64, "test_sha256": "b" * 64}
    assert man["validation_report"] == {"train": "t.html"} and man["record_ids"] == {"n_train_ids": 3}
    assert same_training(man, validated, metrics["recipe"], 0.25)
    cli = build_manifest(params, validated, trained, metrics)
    assert cli["gate"] is None and cli["compared_with"] is None and cli["dag_id"] is None


def test_same_training_compares_digests_recipe_and_share():
    man = {"inputs": {"train_sha256": "a", "test_sha256": "b"}, "metrics": {"recipe": {"seed": 42}},
           "params": {"val_fraction": 0.25}}
    inputs = {"train_sha256": "a", "test_sha256": "b"}
    assert same_training(man, inputs, {"seed": 42}, 0.25)
    assert not same_training(man, inputs, {"seed": 7}, 0.25)
    assert not same_training(man, {**inputs, "test_sha256": "c"}, {"seed": 42}, 0.25)
    assert not same_training(man, inputs, {"seed": 42}, 0.3)
    assert not same_training(None, inputs, {"seed": 42}, 0.25)


def test_record_ids_round_trip_through_the_registry(tmp_path):
    from ml.registry import VERSION_FILES, Registry

    cand = tmp_path / "cand"
    cand.mkdir()
    for f in VERSION_FILES:
        (cand / f).write_text("x\n")
    summary = write_record_ids(np.array(["b", "a", "a"], dtype=object), np.array(["c"], dtype=object), None,
                               cand / "record_ids.json")
    assert summary == {"file": "record_ids.json", "n_train_ids": 2, "n_validation_ids": 1, "n_gate_ids": None}
    assert json.loads((cand / "record_ids.json").read_text())["train"] == ["a", "b"]
    reg = Registry(tmp_path / "art")
    reg.register("v1", cand, {})
    assert version_trained_ids(reg, "v1") == {"a", "b"}
    legacy = tmp_path / "art" / "models" / "v0"  # registered before record_ids.json existed
    legacy.mkdir(parents=True)
    (legacy / "manifest.json").write_text("{}")
    assert version_trained_ids(reg, "v0") is None
