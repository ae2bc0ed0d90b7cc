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


# ------------------------------------------------------------------------------------------- the lineage budget
def _with_reference(champion_lo, reference_lo, n=300):
    m = _metrics(champion_lo)
    m["reference_comparison"] = _metrics(reference_lo, n=n)["champion_comparison"]
    return m


def test_a_challenger_within_the_tolerance_of_the_champion_is_kept_out_below_the_reference():
    """Issue 22: beating the champion is not enough when the lineage has slipped: the challenger must also be
    within the tolerance of the lineage reference; the decision says which comparison kept it out."""
    kept = champion_gate(_with_reference(-0.01, -0.03), "v3", 0.02, min_records=100, reference_version="v1")
    assert not kept["promote"] and kept["decision"] == "keep_champion"
    assert "against the lineage reference v1" in kept["reason"] and "lower end < -tolerance" in kept["reason"]
    assert kept["reference_version"] == "v1" and kept["reference_comparison"]["ci_low"] == -0.03
    ok = champion_gate(_with_reference(-0.01, -0.015), "v3", 0.02, min_records=100, reference_version="v1")
    assert ok["promote"] and ok["reference_after"] == "v1"  # promoted, but not better: the reference stays
    better = champion_gate(_with_reference(0.01, 0.001), "v3", 0.02, min_records=100, reference_version="v1")
    assert better["promote"] and better["reference_after"] == "challenger"  # better beyond the uncertainty
    few = champion_gate(_with_reference(0.01, 0.01, n=40), "v3", 0.02, min_records=100, reference_version="v1")
    assert not few["promote"] and few["decision"] == "no_comparison" and "lineage reference v1" in few["reason"]


def test_without_a_separate_reference_the_champion_is_it_and_forcing_leaves_it():
    same = champion_gate(_metrics(0.002), "v1", 0.02, min_records=100, reference_version="v1")
    assert same["promote"] and same["reference_after"] == "challenger" and same["reference_comparison"] is None
    assert champion_gate(_metrics(-0.01), "v1", 0.02, min_records=100)["reference_after"] == "v1"
    assert champion_gate({"val_auc": 0.9}, None, 0.02, min_records=100)["reference_after"] == "challenger"
    forced = champion_gate(_with_reference(-0.2, -0.3), "v3", 0.02, min_records=100, reference_version="v1",
                           force_promote=True)
    assert forced["promote"] and forced["reference_after"] == "v1"


def test_promotions_record_the_reference_and_rollbacks_keep_it(tmp_path):
    """The reference travels with promotions (champion.json and the audit); a rollback or a forced promotion
    records none, so the lineage's reference stays the one the last gated promotion set."""
    from ml.promotion import lineage_reference, promote
    from tests.support.candidates import seeded_registry

    reg = seeded_registry(tmp_path, ("v1", "v2", "v3"), champion=None)
    assert lineage_reference(reg) is None
    base = {"force_promote": False, "reason": "r"}
    promote(reg, {**base, "version": "v1", "champion_version": None, "reference_after": "challenger"})
    assert lineage_reference(reg) == "v1" and reg.champion()["reference"] == "v1"
    promote(reg, {**base, "version": "v2", "champion_version": "v1", "reference_after": "v1"})  # not better
    assert reg.champion_version() == "v2" and lineage_reference(reg) == "v1"
    reg.rollback("v1", user="ops")
    reg.rollback("v2", user="ops")
    assert lineage_reference(reg) == "v1"  # rollbacks move the pointer, not the reference
    promote(reg, {**base, "version": "v3", "champion_version": "v2", "reference_after": "challenger"})
    assert lineage_reference(reg) == "v3"
    reg.rollback("v1", user="ops")
    assert lineage_reference(reg) == "v3"


def test_a_lineage_begun_before_references_uses_its_champion(tmp_path, monkeypatch):
    from ml import manifest
    from ml.promotion import compared_models, lineage_reference
    from tests.support.candidates import seeded_registry

    monkeypatch.setattr(manifest, "trained_ids", lambda registry, version: {f"{version}-id"})
    reg = seeded_registry(tmp_path, ("v1", "v2"), champion="v2")  # promoted without a reference
    assert lineage_reference(reg) == "v2"
    assert set(compared_models(reg, "v2", "v2", tmp_path / "d")) == {"champion"}
    assert set(compared_models(reg, "v2", "v1", tmp_path / "d")) == {"champion", "reference"}
    assert set(compared_models(reg, "v2", "v-gone", tmp_path / "d")) == {"champion"}  # the gate says so
