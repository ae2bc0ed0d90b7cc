"""The promote decision (ml.promotion): the champion/challenger rule with its uncertainty (9.2, 9.3, 16.2), the
same-training rule, the damage policy, version naming and the compare-and-set."""

from datetime import UTC, datetime, timedelta

import pytest

from ml.errors import GateError
from ml.promotion import accuracy_gate, champion_gate, make_version, same_training, version_for_run
from ml.registry import Registry


# ------------------------------------------------------------------------------------------- the rule
def _metrics(lo, hi=0.03, n=300, diff=None):
    diff = (lo + hi) / 2 if diff is None else diff
    cmp = {"method": "delong", "confidence": 0.95, "n": n, "n_pos": n // 3, "n_neg": n - n // 3,
           "challenger_auc": 0.95 + diff, "champion_auc": 0.95, "difference": diff, "ci_low": lo, "ci_high": hi,
           "n_excluded_champion_trained": 0}
    return {"val_auc": 0.96, "champion_comparison": cmp}


def test_rule_at_its_edges():
    tol = 0.005
    assert champion_gate(_metrics(-0.005), "v1", tol, min_records=100)["promote"]  # lower end exactly -tolerance
    low = champion_gate(_metrics(-0.0051), "v1", tol, min_records=100)
    assert not low["promote"] and low["decision"] == "keep_champion"
    assert "95% CI [-0.0051, +0.0300]" in low["reason"] and "delong" in low["reason"] and "n=300" in low["reason"]
    forced = champion_gate(_metrics(-0.2), "v1", tol, force_promote=True, min_records=100)
    assert forced["promote"] and forced["reason"].startswith("forced by operator (keep_champion")
    assert champion_gate({"val_auc": 0.9}, None, tol, min_records=100)["reason"] == "no champion yet"


def test_too_few_unseen_records_or_unknown_champion_ids_refuse_the_comparison():
    few = champion_gate(_metrics(0.01, n=99), "v1", 0.005, min_records=100)
    assert not few["promote"] and few["decision"] == "no_comparison" and "only 99" in few["reason"]
    assert champion_gate(_metrics(0.01, n=100), "v1", 0.005, min_records=100)["promote"]
    unknown = champion_gate({"val_auc": 0.99}, "v0", 0.005, min_records=100)
    assert not unknown["promote"] and "does not record which records it trained on" in unknown["reason"]
    assert champion_gate({"val_auc": 0.99}, "v0", 0.005, force_promote=True, min_records=100)["promote"]


def test_same_inputs_need_a_challenger_better_beyond_the_uncertainty():
    tied = champion_gate(_metrics(0.0, 0.0, diff=0.0), "v1", 0.005, same_inputs=True, min_records=100)
    assert not tied["promote"] and tied["decision"] == "keep_champion" and "same inputs and recipe" in tied["reason"]
    assert not champion_gate(_metrics(-0.001), "v1", 0.005, same_inputs=True, min_records=100)["promote"]
    assert champion_gate(_metrics(0.0001), "v1", 0.005, same_inputs=True, min_records=100)["promote"]
    assert champion_gate(_metrics(0.0, 0.0, diff=0.0), "v1", 0.005, same_inputs=True, force_promote=True, min_records=100)["promote"]


def test_a_damaged_champion_forced_past_is_recorded_not_called_no_champion():
    d = champion_gate({"val_auc": 0.9}, None, 0.005, force_promote=True, champion_problem="registry damaged: x", min_records=100)
    assert d["promote"] and d["champion_problem"] == "registry damaged: x"
    assert d["reason"] == "forced by operator; the champion could not be compared: registry damaged: x"
    assert champion_gate({"val_auc": 0.9}, None, 0.005, min_records=100)["champion_problem"] is None


def test_same_training_compares_digests_recipe_and_share():
    man = {"inputs": {"train_sha256": "a", "test_sha256": "b"}, "metrics": {"recipe": {"seed": 42}},
           "params": {"val_fraction": 0.25}}
    inputs = {"train_sha256": "a", "test_sha256": "b"}
    assert same_training(man, inputs, {"seed": 42}, 0.25)
    assert not same_training(man, inputs, {"seed": 7}, 0.25)
    assert same_training(man, {**inputs, "test_sha256": "c"}, {"seed": 42}, 0.25)  # the test file is not learnt
    assert not same_training(man, {**inputs, "train_sha256": "c"}, {"seed": 42}, 0.25)
    assert not same_training(man, inputs, {"seed": 42}, 0.3)
    assert not same_training(None, inputs, {"seed": 42}, 0.25)


def test_versions_are_deterministic_per_run_and_sort_by_time():
    t1, t2 = datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 8, 3, tzinfo=UTC)
    assert make_version(t1, "d", "r1") == make_version(t1, "d", "r1")
    assert make_version(t1, "d", "r1") != make_version(t1, "d", "r2")
    assert sorted([make_version(t2, "d", "a"), make_version(t1, "d", "z")])[0] == make_version(t1, "d", "z")


def test_accuracy_gate_names_the_figure_and_the_threshold():
    assert accuracy_gate({"val_accuracy": 0.9}, 0.85)["passed"]
    with pytest.raises(GateError, match=r"0\.8000.*0\.8500"):
        accuracy_gate({"val_accuracy": 0.8}, 0.85)


def test_a_version_is_named_after_the_runs_actual_start_and_is_deterministic_per_run(tmp_path):
    """A scheduled run picked up days after its logical date is named after when it ran; the same run always
    gives the same name, another run another one; names sort by creation whatever the logical dates say."""
    reg = Registry(tmp_path / "reg")
    started = datetime(2026, 11, 28, 9, 15, 2, tzinfo=UTC)
    version = version_for_run(reg, started, "turkey_training", "scheduled__2026-11-23T03:00:00+00:00")
    assert version.startswith("v20261128T091502-"), version
    assert version_for_run(reg, started, "turkey_training", "scheduled__2026-11-23T03:00:00+00:00") == version
    assert version_for_run(reg, started, "turkey_training", "scheduled__2026-11-30T03:00:00+00:00") != version
    t0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    names = [version_for_run(reg, t0 + timedelta(minutes=m), "turkey_training", run_id)
             for m, run_id in ((0, "asset_triggered__a"), (5, "manual__b"), (9, "scheduled__2026-11-23T03:00:00"))]
    assert names == sorted(names)


def test_a_cleared_run_keeps_the_version_it_registered(tmp_path):
    """Clearing a finished run's tasks gives the run a new start; its version must not change."""
    from tests.support.candidates import make_candidate

    reg = Registry(tmp_path / "reg")
    version = version_for_run(reg, datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "turkey_training", "manual__x")
    reg.register(version, make_candidate(tmp_path, "x"), {"run_id": "manual__x"})
    assert version_for_run(reg, datetime(2026, 11, 29, 8, 0, tzinfo=UTC), "turkey_training", "manual__x") == version
