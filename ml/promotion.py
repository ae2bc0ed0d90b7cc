"""The promote decision, in one place: which champion a run is compared with, whether the challenger may
replace it, under which version name it is registered, and the guarded move of the pointer.

The DAG's tasks, the console and ``turkey train`` all call these functions; none of them decides anything
of its own. In the order a run uses them:

1. :func:`current_champion` -- the champion to compare with, and the damage policy: a damaged champion is
   never "no champion"; it fails the run unless the operator forced the promotion, and then the decision
   records why there was no comparison.
2. :func:`lineage_reference` and :func:`compared_models` -- the lineage's reference (the best champion so
   far, see below) and each compared model with the ids it trained on, so the candidate's run scores them
   on records neither it nor the candidate trained on.
3. :func:`accuracy_gate` -- the absolute floor.
4. :func:`decide` -- the champion/challenger gate (:func:`champion_gate`) with the same-training rule
   (:func:`same_training`): a retrain on the champion's exact labelled data and recipe must be better beyond
   the uncertainty.
5. :func:`version_for_run` -- the version name (deterministic per run, so retries never register twice).
6. :func:`promote` -- the re-check: a compare-and-set on the champion the gate compared with, so a rollback
   made meanwhile is never overwritten by a stale decision.

**The tolerance is a budget for the lineage, not an allowance per step.** A challenger must be non-inferior
within ``auc_tolerance`` to the champion *and* to the lineage's reference: the champion that last proved
itself better than its reference at the configured confidence (the first champion to begin with). The
reference moves only to a challenger whose interval against it lies wholly above 0, so its true AUC does
not fall, and every champion is within the tolerance of it at that confidence: a chain of slightly worse
retrains cannot walk the lineage down (``python -m bench.gate_chain``; docs/gate.md). Promotions record
the reference in ``champion.json`` and the audit; a rollback or a forced promotion leaves it as it was.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import TypedDict

from ml.errors import GateError, RegistryDamaged

log = logging.getLogger(__name__)


class AccuracyGateResult(TypedDict):
    """:func:`accuracy_gate` passed: the figure and the threshold."""

    passed: bool
    val_accuracy: float
    min_val_accuracy: float
    n_val: int | None


class GateDecision(TypedDict):
    """:func:`champion_gate`: promote or not, the outcome's name, the reason and what it was based on."""

    champion_version: str | None
    champion_problem: str | None
    challenger_val_auc: float
    champion_val_auc: float | None
    tolerance: float
    min_records: int
    same_inputs_as_champion: bool
    comparison: dict | None
    reference_version: str | None
    reference_comparison: dict | None
    reference_after: str | None
    force_promote: bool
    promote: bool
    decision: str
    reason: str


# ----------------------------------------------------------------------------------------- the champion
def current_champion(registry, force_promote: bool) -> tuple[str | None, str | None]:
    """``(champion version or None, problem or None)``. A damaged champion raises
    :class:`~ml.errors.RegistryDamaged` unless ``force_promote``; then the version is None and ``problem``
    says why the run could not be compared."""
    try:
        return registry.champion_version(), None
    except RegistryDamaged as exc:
        if not force_promote:
            raise
        log.warning("force_promote: no champion comparison because %s", exc)
        return None, str(exc)


def lineage_reference(registry) -> str | None:
    """The lineage's reference: the ``reference`` the newest pointer change recorded (promotions do), else
    the champion (a lineage begun before references were recorded); None without a champion."""
    from ml.registry import POINTER_ACTIONS

    for entry in reversed(registry.audit()):
        if entry.get("action") in POINTER_ACTIONS and entry.get("reference"):
            return entry["reference"]
    return registry.champion_version()


def compared_models(registry, champion: str | None, reference: str | None, dest_dir) -> dict:
    """``{role: (local model.keras path, ids it trained on)}`` for ``champion`` and, when it is another
    version, ``reference``; the ids are None for versions registered before they were recorded (then no fair
    comparison exists). A reference that is no longer in the registry is left out (the gate says so)."""
    from ml.manifest import trained_ids

    out = {}
    for role, version in (("champion", champion), ("reference", reference if reference != champion else None)):
        if version is not None and version in registry.versions():
            out[role] = (registry.fetch_model(version, dest_dir), trained_ids(registry, version))
    return out


# ----------------------------------------------------------------------------------------- the gates
def accuracy_gate(metrics: dict, min_val_accuracy: float) -> AccuracyGateResult:
    """Fail (GateError) below ``min_val_accuracy`` on this run's validation records."""
    acc = metrics["val_accuracy"]
    n = metrics.get("n_val")
    on = f" on {n} validation records" if n else ""
    if not acc >= min_val_accuracy:
        raise GateError(
            f"validation accuracy {acc:.4f}{on} is below the threshold min_val_accuracy={min_val_accuracy:.4f}; "
            "nothing was published"
        )
    return {"passed": True, "val_accuracy": acc, "min_val_accuracy": min_val_accuracy, "n_val": n}


def same_training(champion_manifest: dict | None, inputs: dict, recipe: dict | None, val_fraction) -> bool:
    """Whether a run would retrain the champion as it was: the same labelled data (train digest), the same
    recipe (seed included) and the same validation share. The test file plays no part: it is scored, not
    learnt from."""
    if not champion_manifest:
        return False
    champ_inputs = champion_manifest.get("inputs") or {}
    champ_recipe = (champion_manifest.get("metrics") or {}).get("recipe")
    champ_fraction = (champion_manifest.get("params") or {}).get("val_fraction")
    return (
        champ_inputs.get("train_sha256") == inputs.get("train_sha256")
        and champ_recipe is not None
        and champ_recipe == recipe
        and champ_fraction == val_fraction
    )


def describe_comparison(c: dict) -> str:
    """One line for a paired AUC comparison: difference, both AUCs, interval, method, records."""
    return (
        f"challenger - champion AUC {c['difference']:+.4f} ({c['challenger_auc']:.4f} vs {c['champion_auc']:.4f}), "
        f"{c['confidence']:.0%} CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], {c['method']}, "
        f"n={c['n']} records neither model trained on"
    )


def champion_gate(metrics: dict, champion_version: str | None, tolerance: float, *, min_records: int,
                  force_promote: bool = False, same_inputs: bool = False, champion_problem: str | None = None,
                  reference_version: str | None = None) -> GateDecision:
    """Challenger vs champion, fairly and with its uncertainty.

    Compares on ``metrics["champion_comparison"]`` (records neither model trained on). Promote when the
    lower end of the confidence interval of (challenger - champion) AUC is >= ``-tolerance``: the
    challenger is, at the configured confidence, not worse by more than the tolerance. When the run
    retrained on the champion's exact labelled data and recipe (``same_inputs``), only a challenger better
    beyond the uncertainty (lower end > 0) replaces it. No comparison is made (and nothing promoted) when
    the champion's training records are unknown or fewer than ``min_records`` records remain.
    ``force_promote`` promotes anyway; the decision says so. ``champion_problem`` (the operator forced past
    a damaged champion, so ``champion_version`` is None) is recorded, and the reason says it, not "no
    champion yet". With a lineage ``reference_version`` other than the champion, a challenger the champion
    rule would promote must also clear the same rule against it (``metrics["reference_comparison"]``).
    ``reference_after`` is the lineage's reference once this challenger is promoted: ``"challenger"`` when
    it is better than the reference beyond the uncertainty (lower end > 0), else the reference as it was.
    """
    cmp = metrics.get("champion_comparison")
    decision = {
        "champion_version": champion_version,
        "champion_problem": champion_problem,
        "challenger_val_auc": metrics["val_auc"],
        "champion_val_auc": None,
        "tolerance": tolerance,
        "min_records": min_records,
        "same_inputs_as_champion": bool(same_inputs),
        "comparison": cmp,
        "force_promote": bool(force_promote),
    }
    if champion_version is None:
        promote, outcome, reason = True, "promote", "no champion yet"
    elif cmp is None:
        promote, outcome = False, "no_comparison"
        reason = (f"champion {champion_version} does not record which records it trained on (registered before "
                  "record_ids.json), so no fair comparison is possible; promote a new model with force_promote")
    elif cmp["n"] < min_records or cmp.get("ci_low") is None:
        promote, outcome = False, "no_comparison"
        reason = (f"only {cmp['n']} validation record(s) ({cmp.get('n_pos', 0)} positive) that champion "
                  f"{champion_version} did not train on (min_gate_records={min_records}; "
                  f"{cmp.get('n_excluded_champion_trained', 0)} excluded because it trained on them)")
    else:
        decision["champion_val_auc"] = cmp["champion_auc"]
        decision["challenger_val_auc"] = cmp["challenger_auc"]
        detail = describe_comparison(cmp)
        if same_inputs:
            promote = cmp["ci_low"] > 0
            outcome = "promote" if promote else "keep_champion"
            reason = (f"same inputs and recipe as champion {champion_version}: {'better' if promote else 'not better'} "
                      f"beyond the uncertainty ({detail}; needs lower end > 0)")
        else:
            promote = cmp["ci_low"] >= -tolerance
            outcome = "promote" if promote else "keep_champion"
            reason = f"{detail}; lower end {'>=' if promote else '<'} -tolerance {-tolerance:+.4f}"
    reference = reference_version if reference_version not in (None, champion_version) else None
    ref_cmp = metrics.get("reference_comparison") if reference else cmp
    if promote and reference and champion_version is not None:
        promote, outcome, reason = _against_reference(ref_cmp, reference, tolerance, min_records, reason)
    if not promote and force_promote:
        promote, outcome, reason = True, "promote", f"forced by operator ({outcome}: {reason})"
    if champion_problem:
        reason = f"forced by operator; the champion could not be compared: {champion_problem}"
    current = reference or champion_version
    better = bool(ref_cmp) and ref_cmp.get("ci_low") is not None and ref_cmp["ci_low"] > 0 and not force_promote
    decision.update(promote=promote, decision=outcome, reason=reason, reference_version=current,
                    reference_comparison=ref_cmp if reference else None,
                    reference_after="challenger" if current is None or better else current)
    log.info("champion gate: %s (%s)", outcome, reason)
    return decision


def _against_reference(cmp: dict | None, reference: str, tolerance: float, min_records: int, reason: str):
    """``(promote, outcome, reason)`` of a challenger the champion rule promotes, against the lineage
    ``reference`` (its comparison ``cmp``): kept out when it may be more than ``tolerance`` below it."""
    if cmp is None or cmp["n"] < min_records or cmp.get("ci_low") is None:
        n = 0 if cmp is None else cmp["n"]
        return False, "no_comparison", (f"{reason}; but the lineage reference {reference} could not be compared "
                                        f"({n} record(s) it did not train on, min_gate_records={min_records})")
    detail = describe_comparison(cmp).replace("challenger - champion", "challenger - reference")
    if cmp["ci_low"] < -tolerance:
        return False, "keep_champion", (f"{reason}; but against the lineage reference {reference}: {detail}; "
                                        f"lower end < -tolerance {-tolerance:+.4f}")
    return True, "promote", f"{reason}; against the lineage reference {reference}: {detail}; lower end >= " \
                            f"-tolerance {-tolerance:+.4f}"


def decide(registry, config, validated: dict, trained: dict, metrics: dict) -> GateDecision:
    """The gate decision of a trained candidate: against the champion it was scored with
    (``trained["champion_version"]``, from :func:`current_champion`), with ``config``'s
    (:class:`ml.config.RunConfig`) tolerance, minimum records and override."""
    champ = trained.get("champion_version")
    same = bool(champ) and same_training(registry.manifest(champ), validated, trained.get("recipe"),
                                         config.val_fraction)
    return champion_gate(metrics, champ, config.auc_tolerance, min_records=config.min_gate_records,
                         force_promote=config.force_promote, same_inputs=same,
                         champion_problem=trained.get("champion_problem"),
                         reference_version=trained.get("reference_version"))


# ----------------------------------------------------------------------------------------- publishing
def make_version(run_started_at: datetime | str, dag_id: str, run_id: str) -> str:
    """``v<UTC start>-<hash of dag_id/run_id>``: deterministic per run, sortable by creation time."""
    if isinstance(run_started_at, str):
        run_started_at = datetime.fromisoformat(run_started_at.replace("Z", "+00:00"))
    if run_started_at.tzinfo is None:
        run_started_at = run_started_at.replace(tzinfo=UTC)
    stamp = run_started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    return f"v{stamp}-{hashlib.sha1(f'{dag_id}/{run_id}'.encode()).hexdigest()[:8]}"



def version_for_run(registry, started_at, dag_id: str, run_id: str) -> str:
    """The model version of a run: named after the run's actual start (``started_at``), so versions sort by
    creation for manual, scheduled (whose logical date may be days earlier) and asset-triggered runs alike.
    Deterministic per run: a version this run already registered (a retried task, or a task cleared later,
    which gives the run a new start) is reused."""
    fresh = make_version(started_at, dag_id, run_id)
    suffix = "-" + fresh.rsplit("-", 1)[1]  # the run's digest
    for existing in registry.versions():
        if existing.endswith(suffix) and registry.manifest(existing).get("run_id") == run_id:
            return existing
    return fresh


def promote(registry, registered: dict, approval: dict | None = None, **details) -> dict:
    """Make the ``registered`` version (a :func:`decide` result plus ``version``) the champion; returns the
    new pointer. Unless the promotion was forced, it is a compare-and-set on the champion the gate compared
    with: if it changed since (an operator's rollback), nothing moves and the RegistryError says so.
    ``approval`` (a human decision) and ``details`` (``run_id``, ``user``, ...) are recorded."""
    compare = not registered["force_promote"] and "champion_version" in registered
    expect = {"expect_previous": registered["champion_version"]} if compare else {}
    after = registered.get("reference_after")
    reference = registered["version"] if after == "challenger" else after
    return registry.promote(registered["version"], reason=registered["reason"], approval=approval,
                            force_promote=registered["force_promote"], **expect,
                            **({"reference": reference} if reference else {}), **details)
