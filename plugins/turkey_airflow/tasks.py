"""Bodies of the ``turkey_training`` tasks: read the run's configuration and context, call the library,
map errors.

Each body turns the run's params into one :class:`ml.config.RunConfig` (:func:`run_config`), calls
``ml.pipeline`` (the steps) or ``ml.promotion`` (every decision), and returns a small JSON-able dict that
travels by XCom; arrays stay in files on the shared artifacts root. Every body runs inside
:func:`task_body`: the task process is set up (:func:`turkey_airflow.runtime.setup_task_process`) and
``ml.errors.TurkeyError`` (bad data, failed gate) becomes ``AirflowFailException``: the task fails at once,
without retries, with the one-line reason. Importing this module has no side effects.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from turkey_airflow import lineage
from turkey_airflow.assets import champion_announcement
from turkey_airflow.runtime import setup_task_process

if TYPE_CHECKING:
    from ml.config import RunConfig
    from ml.pipeline import Metrics, Prepared, Trained, TrainedVsChampion, Validated

log = logging.getLogger(__name__)


def task_body(fn):
    """Run ``fn`` as a task body: set the task process up, then map its TurkeyError and environment faults
    (disk full, read-only, permission denied) to AirflowFailException with the one-line reason;
    RegistryBusy stays an ordinary, retried failure."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ml.errors import RegistryBusy, TurkeyError

        setup_task_process()
        try:
            return fn(*args, **kwargs)
        except RegistryBusy:
            raise  # transient (another promotion holds the registry lock): an ordinary failure, retried
        except TurkeyError as exc:
            raise AirflowFailException(str(exc)) from None
        except OSError as exc:  # disk full / read-only / permission denied anywhere (e.g. inside GX): no retry
            from ml.fsutil import as_environment_fault

            raise AirflowFailException(str(as_environment_fault(exc))) from None

    return wrapper


def run_config(context=None) -> RunConfig:
    """The running DAG run's :class:`~ml.config.RunConfig`, from its params."""
    from ml.config import RunConfig

    return RunConfig.from_params((context or get_current_context())["params"])


def _run_dir(context) -> Path:
    from ml.settings import run_dir

    return run_dir(context["dag_run"].run_id)


@task_body
def validate() -> Validated:
    """Validate the run's train and test files; write their compact arrays into the run folder."""
    from ml.pipeline import validate_inputs
    from ml.settings import resolve_input

    ctx = get_current_context()
    cfg = run_config(ctx)
    test = resolve_input(cfg.test_file) if cfg.test_file else None
    run = _run_dir(ctx)
    validated = validate_inputs(resolve_input(cfg.train_file), test, run, min_records=cfg.min_records,
                                report_dir=run / "validation")
    lineage.record(inputs=_input_datasets(cfg, validated), context=ctx)
    return validated


def _input_datasets(cfg, validated) -> list[dict]:
    """The run's training and test files as lineage datasets, versioned by their sha256."""
    from ml.settings import resolve_input

    files = [(cfg.train_file, validated["train_sha256"]), (cfg.test_file, validated.get("test_sha256"))]
    return [lineage.dataset(resolve_input(f), version=sha) for f, sha in files if f]


@task_body
def prepare(validated: Validated) -> Prepared:
    """Split the training records (by vid_id hash) and pad the arrays."""
    from ml.pipeline import prepare_step

    ctx = get_current_context()
    cfg = run_config(ctx)
    return prepare_step(validated["train_npz"], validated["test_npz"], _run_dir(ctx), cfg.val_fraction,
                        source=cfg.train_file)


@task_body
def train(prepared: Prepared) -> TrainedVsChampion:
    """Train the candidate and score the registry's champion and the lineage reference on this run's
    validation records each did not train on (:func:`ml.promotion.current_champion` decides what a damaged
    champion means)."""
    from ml import promotion
    from ml.pipeline import train_step
    from ml.registry import Registry

    ctx = get_current_context()
    cfg, reg, run = run_config(ctx), Registry(), _run_dir(ctx)
    champ, problem = promotion.current_champion(reg, cfg.force_promote)
    reference = promotion.lineage_reference(reg) if champ else None
    trained = train_step(prepared["split_npz"], prepared["test_padded_npz"], run / "candidate",
                         cfg.training_recipe(), promotion.compared_models(reg, champ, reference, run / "champion"),
                         split=prepared.get("split"))
    return {**trained, "champion_version": champ, "champion_problem": problem, "reference_version": reference}


@task_body
def evaluate(prepared: Prepared, trained: Trained) -> Metrics:
    """Validation figures, the baseline and the paired champion comparison (``metrics.json``)."""
    from ml.pipeline import evaluate_step

    return evaluate_step(prepared["split_npz"], trained, run_config())


@task_body
def accuracy_gate(metrics: Metrics) -> dict:
    """Fail the run (publish nothing) below ``min_val_accuracy``."""
    from ml.promotion import accuracy_gate as gate

    return gate(metrics, run_config().min_val_accuracy)


@task_body
def register(validated: Validated, trained: TrainedVsChampion, metrics: Metrics) -> dict:
    """Decide (:func:`ml.promotion.decide`), then write the immutable version folder, winner or not.
    Returns the version, its path, whether this call created it, and the gate decision."""
    from ml import ingest_state, promotion
    from ml.manifest import build_manifest
    from ml.registry import Registry, now_iso

    ctx = get_current_context()
    cfg, dr, reg = run_config(ctx), ctx["dag_run"], Registry()
    decision = promotion.decide(reg, cfg, validated, trained, metrics)
    version = promotion.version_for_run(reg, dr.start_date or dr.run_after, dr.dag_id, dr.run_id)
    manifest = build_manifest(cfg, validated, trained, metrics, gate=decision, dag_id=dr.dag_id, run_id=dr.run_id)
    path, created = reg.register(version, trained["candidate_dir"], manifest)
    # What this run trained on, where the ingest check looks: it announces only data not trained on yet.
    ingest_state.record_trained({"train.json": validated["train_sha256"]},
                                run_id=dr.run_id, version=version, at=now_iso())
    lineage.record(inputs=_input_datasets(cfg, validated), outputs=[lineage.model_dataset(reg, version)], context=ctx)
    log.info("%s model version %s at %s", "registered" if created else "kept existing", version, path)
    return {"version": version, "path": str(path), "created": created, **decision}


@task_body
def decide(registered: dict) -> list[str]:
    """Branch: promote directly, ask a human first, or (challenger lost) skip promotion."""
    if not registered["promote"]:
        log.info("not promoting %s: %s", registered["version"], registered["reason"])
        return []
    return ["approve_promotion"] if run_config().require_approval else ["promote"]


@task_body
def promote(registered: dict) -> dict:
    """Move the champion pointer and latest submission (:func:`ml.promotion.promote`: a compare-and-set on
    the champion the gate compared with) and announce both assets."""
    from ml import promotion
    from ml.registry import Registry

    if not registered or not registered.get("promote"):
        raise AirflowSkipException("challenger was not promoted")
    ctx = get_current_context()
    reg, version = Registry(), registered["version"]
    approval = None
    if run_config(ctx).require_approval:  # who approved, when, with what comment (approval.py)
        decided = ctx["ti"].xcom_pull(task_ids="approve_promotion")
        approval = decided.get("approval") if isinstance(decided, dict) else None
        if not approval:
            raise AirflowSkipException(f"{version} was not approved (see approve_promotion)")
    pointer = promotion.promote(reg, registered, approval=approval, run_id=ctx["dag_run"].run_id)
    for asset, extra in champion_announcement(reg, version).items():
        ctx["outlet_events"][asset].extra = extra
    lineage.record(inputs=[lineage.model_dataset(reg, version)],
                   outputs=[lineage.dataset(reg.submission_path(), version=version)], context=ctx)
    log.info("champion is now %s; submission %s", version, reg.submission_path())
    _record_lineage(reg, _run_dir(ctx))
    return {"version": version, "previous": pointer.get("previous"), "reason": registered["reason"],
            "model": reg.display(reg.version_path(version, "model.keras")), "submission": reg.submission_path(),
            "approved_by": (approval or {}).get("by")}


def _record_lineage(reg, run) -> None:
    """Every champion's AUC on this run's validation records none of them trained on (:mod:`ml.lineage`).
    The promotion is done: a failure here is logged, never raised."""
    from ml import lineage
    from ml.data import load_arrays

    try:
        d = load_arrays(run / "split.npz")
        curve = lineage.measure(reg, d["ids_val"], d["x_val"], d["y_val"], run / "champion")
        lineage.write(reg, curve)
        log.info("lineage on %d common records: %s", curve["n"],
                 ", ".join(f"{p['version']} {p['auc']}" for p in curve["points"]))
    except Exception as exc:  # noqa: BLE001 - the curve is a view; the promotion stands
        log.warning("lineage curve not updated: %s", exc)


@task_body
def cleanup() -> dict:
    """After a successful run: drop the run's bulky intermediates (npz arrays, the candidate folder, which
    the registry now holds, and any downloaded champion); the validation report stays. A failed run keeps
    everything for inspection and for clearing tasks, until retention (:mod:`ml.retention`) removes it;
    orphaned temporary files (older than an hour) go too."""
    from ml.registry import Registry
    from ml.registry.doctor import remove_orphans
    from ml.retention import prune_runs, remove_intermediates, remove_temp_files
    from ml.settings import settings

    run, s = _run_dir(get_current_context()), settings()
    freed = remove_intermediates(run)
    pruned = prune_runs(run.parent, s.keep_reports, s.report_max_age_days, protect=[run])
    orphans = remove_temp_files(run.parent) + remove_orphans(Registry())
    return {"run_dir": str(run), "freed_bytes": freed + pruned["freed_bytes"],
            "pruned_runs": len(pruned["removed"]), "orphans_removed": len(orphans)}
