"""Bodies of the ``turkey_training`` tasks: read params and context, call ``ml.pipeline``, map errors.

Each function returns a small JSON-able dict (paths and figures), typed by ``ml.pipeline``'s step results,
that travels by XCom; arrays stay in files on the shared artifacts root. Every body runs inside
:func:`_task_body`: the task process is set up (:func:`turkey_airflow.runtime.setup_task_process`), the
body's start and end are logged (:func:`ml.task_marker.task_body`, read by the bench), and
``ml.errors.TurkeyError`` (bad data, failed gate) becomes ``AirflowFailException`` (:func:`_fail_cleanly`):
the task fails at once, without retries, with the one-line reason. Importing this module has no side effects.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from turkey_airflow.assets import MODEL, SUBMISSION
from turkey_airflow.runtime import setup_task_process

if TYPE_CHECKING:
    from ml.pipeline import AccuracyGateResult, Metrics, Prepared, Trained, TrainedVsChampion, Validated

log = logging.getLogger(__name__)


def _task_id(fn) -> str:
    """The running task's id (the DAG may name a task other than its function), else the function's name."""
    ti = get_current_context().get("ti")
    return getattr(ti, "task_id", None) or fn.__name__


def _fail_cleanly(fn):
    """Map ``fn``'s TurkeyError and environment faults (disk full, read-only, permission denied) to
    AirflowFailException with the one-line reason; RegistryBusy stays an ordinary, retried failure."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ml.errors import RegistryBusy, TurkeyError

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


def _task_body(fn):
    """Run ``fn`` as a task body: set the task process up, log the body's start and end under the running
    task's id (:func:`ml.task_marker.task_body`) and map errors (:func:`_fail_cleanly`)."""
    clean = _fail_cleanly(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ml.task_marker import task_body

        setup_task_process()
        with task_body(_task_id(fn)):
            return clean(*args, **kwargs)

    return wrapper


def _run_dir(context) -> Path:
    from ml.config import run_dir

    return run_dir(context["dag_run"].run_id)


@_task_body
def validate() -> Validated:
    """Validate the run's train and test files; write their compact arrays into the run folder."""
    from ml.config import resolve_input
    from ml.pipeline import validate_inputs

    ctx = get_current_context()
    p = ctx["params"]
    train, test = resolve_input(p["train_file"]), resolve_input(p["test_file"])
    run = _run_dir(ctx)
    return validate_inputs(train, test, run, report_dir=run / "validation", min_records=p["min_records"])


@_task_body
def prepare(validated: Validated) -> Prepared:
    """Split the training records (by vid_id hash) and pad the arrays."""
    from ml.pipeline import prepare_step

    ctx = get_current_context()
    p = ctx["params"]
    return prepare_step(validated["train_npz"], validated["test_npz"], _run_dir(ctx), p["val_fraction"],
                        source=p["train_file"])


@_task_body
def train(prepared: Prepared) -> TrainedVsChampion:
    """Train the candidate, scored against the registry's champion (a damaged champion fails the task
    unless ``force_promote``; then the result says why there was no comparison)."""
    from ml.defaults import recipe_from_params
    from ml.errors import RegistryDamaged
    from ml.pipeline import train_step, version_trained_ids
    from ml.registry import Registry

    ctx = get_current_context()
    reg = Registry()
    champ_problem = None
    try:
        champ = reg.champion_version()
    except RegistryDamaged as exc:  # a broken champion is never "no champion": fail unless forced
        if not ctx["params"]["force_promote"]:
            raise
        champ, champ_problem = None, str(exc)
        log.warning("force_promote: no champion comparison because %s", exc)
    champ_model = reg.fetch_model(champ, _run_dir(ctx) / "champion") if champ else None
    trained = train_step(
        prepared["split_npz"],
        prepared["test_padded_npz"],
        _run_dir(ctx) / "candidate",
        recipe_from_params(ctx["params"]),
        champion_model=champ_model,
        champion_trained_ids=version_trained_ids(reg, champ) if champ else None,
        split=prepared.get("split"),
    )
    return {**trained, "champion_version": champ, "champion_problem": champ_problem}


@_task_body
def evaluate(prepared: Prepared, trained: Trained) -> Metrics:
    """Validation figures, the baseline and the paired champion comparison (``metrics.json``)."""
    from ml.pipeline import evaluate_step

    p = get_current_context()["params"]
    return evaluate_step(prepared["split_npz"], trained, p["seed"], comparison_method=p["gate_method"],
                         confidence=p["gate_confidence"])


@_task_body
def accuracy_gate(metrics: Metrics) -> AccuracyGateResult:
    """Fail the run (publish nothing) below ``min_val_accuracy``."""
    from ml.pipeline import accuracy_gate as gate

    return gate(metrics, get_current_context()["params"]["min_val_accuracy"])


def run_version(reg, dag_run) -> str:
    """The model version of ``dag_run``: named after the run's actual start (``start_date``), so versions
    sort by creation for manual, scheduled (whose logical date may be days earlier) and asset-triggered
    runs alike. Deterministic per run: a version this run already registered (a retried task, or a task
    cleared later, which gives the run a new ``start_date``) is reused."""
    from ml.registry import make_version

    fresh = make_version(dag_run.start_date or dag_run.run_after, dag_run.dag_id, dag_run.run_id)
    suffix = "-" + fresh.rsplit("-", 1)[1]  # the run's digest
    for existing in reg.versions():
        if existing.endswith(suffix) and reg.manifest(existing).get("run_id") == dag_run.run_id:
            return existing
    return fresh


@_task_body
def register(validated: Validated, trained: TrainedVsChampion, metrics: Metrics) -> dict:
    """Compare with the champion, then write the immutable version folder (winner or not). Returns the
    version, its path, whether this call created it, and the gate decision."""
    from ml import ingest_state
    from ml.pipeline import build_manifest, champion_gate, same_training
    from ml.registry import Registry, now_iso

    ctx = get_current_context()
    p = ctx["params"]
    dr = ctx["dag_run"]
    reg = Registry()
    champ = trained.get("champion_version")
    same_inputs = bool(champ) and same_training(
        reg.manifest(champ), validated, trained.get("recipe"), p["val_fraction"]
    )
    decision = champion_gate(metrics, champ, p["auc_tolerance"], p["force_promote"],
                             min_records=p["min_gate_records"], same_inputs=same_inputs,
                             champion_problem=trained.get("champion_problem"))
    version = run_version(reg, dr)
    manifest = build_manifest(p, validated, trained, metrics, gate=decision, dag_id=dr.dag_id, run_id=dr.run_id)
    path, created = reg.register(version, trained["candidate_dir"], manifest)
    # What this run trained on, where the ingest check looks: it announces only data not trained on yet.
    ingest_state.record_trained(
        {"train.json": validated["train_sha256"], "test.json": validated["test_sha256"]},
        run_id=dr.run_id, version=version, at=now_iso(),
    )
    log.info("%s model version %s at %s", "registered" if created else "kept existing", version, path)
    return {"version": version, "path": str(path), "created": created, **decision}


@_task_body
def decide(registered: dict) -> list[str]:
    """Branch: promote directly, ask a human first, or (challenger lost) skip promotion."""
    params = get_current_context()["params"]
    if not registered["promote"]:
        log.info("not promoting %s: %s", registered["version"], registered["reason"])
        return []
    return ["approve_promotion"] if params["require_approval"] else ["promote"]


@_task_body
def promote(registered: dict) -> dict:
    """Move the champion pointer and latest submission, and announce both assets."""
    from ml.registry import Registry

    if not registered or not registered.get("promote"):
        raise AirflowSkipException("challenger was not promoted")
    ctx = get_current_context()
    reg = Registry()
    version = registered["version"]
    details = {"run_id": ctx["dag_run"].run_id, "force_promote": registered["force_promote"]}
    approval = None
    if ctx["params"].get("require_approval"):  # who approved, when, with what comment (approval.py)
        decided = ctx["ti"].xcom_pull(task_ids="approve_promotion")
        approval = decided.get("approval") if isinstance(decided, dict) else None
        if not approval:
            raise AirflowSkipException(f"{version} was not approved (see approve_promotion)")
    # compare-and-set on the champion the gate compared with: an operator's rollback (console/CLI) made
    # while this run trained or waited for approval is not silently overwritten by a stale decision
    compare = not registered["force_promote"] and "champion_version" in registered
    expect = {"expect_previous": registered["champion_version"]} if compare else {}
    pointer = reg.promote(version, reason=registered["reason"], approval=approval, **expect, **details)
    info = reg.describe(version)
    metrics = {k: info["metrics"].get(k) for k in ("val_accuracy", "val_auc")}
    ctx["outlet_events"][MODEL].extra = {"version": version, "metrics": metrics, "path": info["model"]}
    ctx["outlet_events"][SUBMISSION].extra = {
        "version": version,
        "metrics": metrics,
        "path": reg.submission_path(),
        "versioned_path": reg.submission_path(version),
    }
    log.info("champion is now %s; submission %s", version, reg.submission_path())
    return {"version": version, "previous": pointer.get("previous"), "model": info["model"],
            "submission": reg.submission_path(), "approved_by": (approval or {}).get("by")}


@_task_body
def cleanup() -> dict:
    """After a successful run: drop the run's bulky intermediates (npz arrays, the candidate folder, which
    the registry now holds, and any downloaded champion). The validation report stays. A failed run keeps
    everything for inspection and for clearing tasks, until the retention policy (``ml.retention``:
    ``TURKEY_KEEP_REPORTS`` newest run folders, ``TURKEY_REPORT_MAX_AGE_DAYS``) removes it; orphaned
    temporary files (older than an hour) go too."""
    import shutil

    from ml.retention import size_of

    run = _run_dir(get_current_context())
    freed = 0
    for path in sorted(run.glob("*.npz")) + [run / "candidate", run / "champion"]:
        if path.is_file():
            freed += size_of(path)
            path.unlink()
        elif path.is_dir():
            freed += size_of(path)
            shutil.rmtree(path)
    log.info("removed %.1f MiB of intermediates from %s", freed / 2**20, run)
    # Retention (ml.retention): older run folders and their validation reports, killed writers' leftovers.
    from ml.config import keep_reports, report_max_age_days
    from ml.registry import Registry
    from ml.retention import prune_runs, remove_temp_files

    pruned = prune_runs(run.parent, keep_reports(), report_max_age_days(), protect=[run])
    orphans = remove_temp_files(run.parent) + Registry().remove_orphans()
    return {"run_dir": str(run), "freed_bytes": freed + pruned["freed_bytes"],
            "pruned_runs": len(pruned["removed"]), "orphans_removed": len(orphans)}
