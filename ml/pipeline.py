"""The pipeline's steps as plain functions: paths in, small JSON-able dicts out.

The Airflow tasks (``plugins/turkey_airflow``) and the ``turkey`` CLI both call these; nothing here
imports Airflow. Large data moves between steps as files under a per-run work folder on the shared
artifacts root, never through XCom. Only :func:`train_step` (and scoring) imports TensorFlow.

Each step's result has a type (a ``TypedDict``, so it stays a plain dict that XCom carries as JSON):
validate -> :class:`Validated`, prepare -> :class:`Prepared`, train -> :class:`Trained` (and, in the DAG,
:class:`TrainedVsChampion`: which champion it was scored against), evaluate -> :class:`Metrics`, gates ->
:class:`AccuracyGateResult` and :class:`GateDecision`. :func:`build_manifest` describes a trained model
from these, for the registry (DAG) and for ``turkey train``'s output folder alike. Defaults come from
:mod:`ml.defaults`.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NotRequired, TypedDict

from ml import defaults
from ml.data import load_arrays, pad_frames, save_arrays
from ml.errors import DataError, GateError, TurkeyError
from ml.fsutil import atomic_output

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- step results
class Validated(TypedDict):
    """:func:`validate_inputs`: the compact arrays written, record counts, input digests and reports."""

    train_npz: str
    test_npz: str | None
    n_train: int
    n_test: int
    train_sha256: str
    test_sha256: str | None
    warnings: list[str]
    report_dir: str
    report_html: dict[str, str | None]


class Prepared(TypedDict):
    """:func:`prepare_step`: the split and padded arrays, their sizes and the split's specification."""

    split_npz: str
    test_padded_npz: str | None
    n_train: int
    n_val: int
    val_positive_rate: float
    val_share_per_class: dict[str, float]
    split: dict


class Trained(TypedDict):
    """:func:`train_step`: the candidate folder and how it was trained (and the champion scored)."""

    candidate_dir: str
    device: str
    train_seconds: float
    epochs_run: int
    recipe: dict
    record_ids: dict
    champion_scoring: dict | None


class TrainedVsChampion(Trained):
    """A :class:`Trained` with the champion the candidate was scored against, as the DAG's train task chose
    it from the registry: ``champion_version`` (None: no champion) and ``champion_problem`` (why a damaged
    champion could not be compared when the operator forced past it, else None)."""

    champion_version: str | None
    champion_problem: str | None


#: The training facts :func:`evaluate_step` copies from :class:`Trained` into ``metrics.json``.
TRAINING_FACTS = ("device", "train_seconds", "epochs_run", "recipe")


class Metrics(TypedDict):
    """:func:`evaluate_step` (also ``metrics.json``): validation figures, the baseline, the paired champion
    comparison when the champion was scored, and the :data:`TRAINING_FACTS`."""

    val_accuracy: float
    val_auc: float
    n_train: int
    n_val: int
    baseline_logreg: dict
    evaluated_on: dict
    champion_comparison: NotRequired[dict]
    device: str
    train_seconds: float
    epochs_run: int
    recipe: dict


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
    force_promote: bool
    promote: bool
    decision: str
    reason: str


# --------------------------------------------------------------------------------------------- validate
def validate_inputs(
    train_path, test_path, work_dir, report_dir=None, min_records: int = defaults.MIN_RECORDS, reject: bool = True
) -> Validated:
    """Validate train and (when given) test; on success write compact arrays (``train.npz``, ``test.npz``).

    On failure the offending file is moved to ``rejected/`` beside its folder (when ``reject``) and a
    DataError naming the file, rule and records is raised. Nothing else is written. A train input
    without any label (a test file given as train) and the same file given as train and test are
    refused without moving anything; if the move fails (read-only landing folder) the file stays where
    it was, no copy remains, and the DataError says so.
    """
    from ml.validation import reject_file, validate_file

    work_dir = Path(work_dir)
    report_dir = Path(report_dir) if report_dir else work_dir / "validation"
    if test_path is not None and Path(train_path).absolute() == Path(test_path).absolute():
        raise TurkeyError(f"the train and test inputs are the same file {train_path}; give two files")
    outcomes = {}
    for split, path, ref in (("train", train_path, None), ("test", test_path, "train")):
        if path is None:
            continue
        t0 = time.perf_counter()
        out = validate_file(
            path,
            split,
            report_dir=report_dir / split,
            min_records=min_records if split == "train" else 1,
            reference=outcomes.get(ref),
        )
        log.info(
            "validated %s (%s): %s in %.1fs; report %s",
            path,
            split,
            "OK" if out.ok else f"{len(out.failures)} rule(s) broken",
            time.perf_counter() - t0,
            out.report_html or out.report_json,
        )
        for w in out.warnings:
            log.warning("%s: %s", path, w)
        if not out.ok:
            note = ""
            if split == "train" and _unlabelled(out):
                note = " -- it looks like a test file (no record has is_turkey); not moved to rejected/"
            elif reject and Path(path).is_file():
                try:
                    moved = reject_file(path, report_dir / split)
                    log.error("moved rejected input %s to %s", path, moved)
                except TurkeyError as exc:  # e.g. a read-only landing folder: the file stays, no copy is left
                    log.error("could not move rejected input %s to rejected/: %s", path, exc)
                    note = f" (left in place: could not move it to rejected/: {exc})"
            try:
                out.raise_for_failures()
            except DataError as exc:
                if not note:
                    raise
                raise DataError(exc.file, exc.rule, exc.message + note, exc.records) from None
        outcomes[split] = out
    tr = outcomes["train"].records
    te = outcomes["test"].records if "test" in outcomes else None
    train_npz = save_arrays(
        work_dir / "train.npz", ids=tr.ids, frames=tr.frames, lengths=tr.lengths, labels=tr.labels
    )
    test_npz = (
        save_arrays(work_dir / "test.npz", ids=te.ids, frames=te.frames, lengths=te.lengths) if te is not None else None
    )
    return {
        "train_npz": train_npz,
        "test_npz": test_npz,
        "n_train": len(tr),
        "n_test": len(te) if te is not None else 0,
        "train_sha256": tr.sha256,
        "test_sha256": te.sha256 if te is not None else None,
        "warnings": [w for o in outcomes.values() for w in o.warnings],
        "report_dir": str(report_dir),
        "report_html": {s: o.report_html for s, o in outcomes.items()},
    }


def _unlabelled(outcome) -> bool:
    """True when a file validated as train has no label at all: a test file given as train input."""
    n = len(outcome.records) if outcome.records is not None else 0
    return n > 0 and any(f.rule == "label.required" and len(f.records) == n for f in outcome.failures)


# --------------------------------------------------------------------------------------------- prepare
def prepare_step(
    train_npz, test_npz, work_dir, val_fraction: float = defaults.VAL_FRACTION, source: str | None = None
) -> Prepared:
    """Repeatable split by record identity (:mod:`ml.prepare`) and Keras-style padding; writes ``split.npz``
    and ``test_padded.npz``. ``source`` names the training file in error messages."""
    from ml.prepare import split_arrays, split_spec

    tr = load_arrays(train_npz)
    source = str(source or train_npz)
    if (tr["labels"] < 0).any():
        raise TurkeyError(f"{source}: {int((tr['labels'] < 0).sum())} training record(s) have no valid label")
    d = split_arrays(tr["frames"], tr["lengths"], tr["labels"], tr["ids"], val_fraction, source=source)
    split_npz = save_arrays(Path(work_dir) / "split.npz", **d)
    test_padded = None
    if test_npz is not None:
        te = load_arrays(test_npz)
        test_padded = save_arrays(
            Path(work_dir) / "test_padded.npz", x=pad_frames(te["frames"], te["lengths"]), ids=te["ids"]
        )
    n_train, n_val = len(d["y_train"]), len(d["y_val"])
    share = {
        f"is_turkey={c}": round(float((d["y_val"] == c).sum()) / max(1, int((tr["labels"] == c).sum())), 4)
        for c in (0, 1)
    }
    log.info(
        "split %d records by vid_id hash: %d train / %d validation (validation share per class: %s)",
        n_train + n_val, n_train, n_val, ", ".join(f"{k} {v:.3f}" for k, v in share.items()),
    )
    return {
        "split_npz": split_npz,
        "test_padded_npz": test_padded,
        "n_train": n_train,
        "n_val": n_val,
        "val_positive_rate": float(d["y_val"].mean()) if n_val else 0.0,
        "val_share_per_class": share,
        "split": split_spec(val_fraction),
    }


# --------------------------------------------------------------------------------------------- record ids
RECORD_IDS_FILE = "record_ids.json"


def write_record_ids(ids_train, ids_val, split: dict | None, path, gate_ids=None) -> dict:
    """``record_ids.json``: the ids a version trained on, validated on and (``gate``, or null without a
    fair comparison) was compared with the champion on; sorted, unique. Returns a summary."""
    from ml.fsutil import write_json

    train = sorted({str(i) for i in ids_train})
    val = sorted({str(i) for i in ids_val})
    gate = None if gate_ids is None else sorted({str(i) for i in gate_ids})
    write_json({"format": 1, "id_field": "vid_id", "split": split, "train": train, "validation": val,
                "gate": gate}, path)
    return {"file": Path(path).name, "n_train_ids": len(train), "n_validation_ids": len(val),
            "n_gate_ids": None if gate is None else len(gate)}


def version_trained_ids(registry, version: str) -> set[str] | None:
    """The ids ``version`` trained on, from its ``record_ids.json``; ``None`` for versions registered
    before versions recorded them (their training records are unknown)."""
    import posixpath

    path = posixpath.join(registry.version_dir(version), RECORD_IDS_FILE)
    if not registry.fs.isfile(path):
        return None
    with registry.fs.open(path, "rb") as fh:
        return set(json.loads(fh.read())["train"])


# --------------------------------------------------------------------------------------------- train
def write_submission(ids, probs, path) -> str:
    """CSV ``vid_id,is_turkey`` (probabilities), one row per record in input order; atomic."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["vid_id", "is_turkey"])
        for vid, p in zip(ids, probs, strict=True):
            w.writerow([vid, f"{float(p):.6f}"])
    return str(path)


def train_step(split_npz, test_padded_npz, out_dir, recipe: dict | None = None, champion_model=None,
               champion_trained_ids: set | None = None, split: dict | None = None) -> Trained:
    """Train the candidate and do all TensorFlow work of the run in this one process.

    Writes into ``out_dir``: model.keras, history.json, curves.png, record_ids.json (the ids trained and
    validated on), predictions.npz (validation and test probabilities) and, when ``test_padded_npz`` is
    given, submission.csv. With a ``champion_model`` whose training ids are known
    (``champion_trained_ids``), it also scores the champion on this run's validation records that the
    champion did NOT train on (``gate_index`` into the validation arrays, ``champion_gate_pred``): the
    records the champion/challenger gate compares on. Unknown champion training ids: no scoring.
    """
    import numpy as np

    from ml.fsutil import write_json
    from ml.tflog import import_tensorflow
    from ml.train import describe_device, fit, make_recipe, predict, save_curves, save_model

    import_tensorflow()  # its start-up lines at INFO, not on stderr (which a task logs at ERROR)

    recipe = dict(recipe or {})
    rc = make_recipe(recipe.pop("name", recipe.pop("preset", "default")), **recipe)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = load_arrays(split_npz)
    device = describe_device()
    log.info("training on %s with recipe %s", device, rc.to_dict())
    model, history, seconds = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], rc)
    log.info("trained %d epoch(s) in %.1fs", len(history.get("loss", [])), seconds)
    val_pred = predict(model, d["x_val"])
    preds = {"val_pred": val_pred}
    if test_padded_npz is not None:
        te = load_arrays(test_padded_npz)
        preds["test_pred"] = predict(model, te["x"])
        write_submission(te["ids"], preds["test_pred"], out / "submission.csv")
    champion, gate_ids = None, None
    if champion_model and Path(champion_model).is_file():
        champion = {"trained_ids_known": champion_trained_ids is not None, "n_val": int(len(d["ids_val"]))}
        if champion_trained_ids is not None:
            seen = np.array([str(i) in champion_trained_ids for i in d["ids_val"]], dtype=bool)
            gate_index = np.flatnonzero(~seen)
            champion |= {"n_excluded_champion_trained": int(seen.sum()), "n_gate": int(len(gate_index))}
            preds["gate_index"] = gate_index
            gate_ids = d["ids_val"][gate_index]
            if len(gate_index):
                import keras

                champ = keras.models.load_model(champion_model, compile=False)
                preds["champion_gate_pred"] = predict(champ, d["x_val"][gate_index])
            log.info(
                "scored champion %s on %d of this run's %d validation records (%d excluded: it trained on them)",
                champion_model, len(gate_index), len(d["ids_val"]), int(seen.sum()),
            )
        else:
            log.warning("champion %s does not record its training ids: it cannot be compared fairly", champion_model)
    record_ids = write_record_ids(d["ids_train"], d["ids_val"], split, out / RECORD_IDS_FILE, gate_ids)
    save_arrays(out / "predictions.npz", **preds)
    save_model(model, out / "model.keras")
    write_json(history, out / "history.json")
    save_curves(history, out / "curves.png")
    return {
        "candidate_dir": str(out),
        "device": device,
        "train_seconds": round(seconds, 2),
        "epochs_run": len(history.get("loss", [])),
        "recipe": rc.to_dict(),
        "record_ids": record_ids,
        "champion_scoring": champion,
    }


# --------------------------------------------------------------------------------------------- evaluate
#: Which records each figure in ``metrics.json`` was computed on (also shown by ``turkey models show``).
EVALUATED_ON = {
    "val_accuracy, val_auc, baseline_logreg, accuracy gate": (
        "this run's validation records (the vid_id-hash validation share of the training file); the same "
        "records drive early stopping and the learning-rate schedule, so these figures are slightly "
        "optimistic (measured: BENCHMARKS.md section 3, validation vs held-out AUC)"
    ),
    "champion_comparison": (
        "this run's validation records that the champion did not train on (from its record_ids.json); "
        "the challenger never trained on them either"
    ),
}


def evaluate_step(split_npz, trained: Trained, seed: int = defaults.SEED,
                  comparison_method: str = defaults.GATE_METHOD, confidence: float = defaults.GATE_CONFIDENCE
                  ) -> Metrics:
    """Validation accuracy/AUC, the logistic-regression baseline on the same split, and -- when the
    champion was scored -- the paired champion/challenger AUC comparison on the records neither trained
    on (:func:`ml.evaluate.compare_auc`), with the :data:`TRAINING_FACTS` of ``trained``; writes
    ``metrics.json`` into the candidate folder."""
    from ml.evaluate import binary_metrics, compare_auc, logistic_baseline
    from ml.fsutil import write_json

    candidate_dir = Path(trained["candidate_dir"])
    d = load_arrays(split_npz)
    p = load_arrays(candidate_dir / "predictions.npz")
    m = binary_metrics(d["y_val"], p["val_pred"])
    base = logistic_baseline(d["x_train"], d["len_train"], d["y_train"], d["x_val"], d["len_val"], d["y_val"], seed)
    metrics: Metrics = {
        "val_accuracy": m["accuracy"],
        "val_auc": m["roc_auc"],
        "n_train": int(len(d["y_train"])),
        "n_val": m["n"],
        "baseline_logreg": {"val_accuracy": base["accuracy"], "val_auc": base["roc_auc"]},
        "evaluated_on": EVALUATED_ON,
        **{key: trained[key] for key in TRAINING_FACTS},
    }
    if "gate_index" in p:
        idx = p["gate_index"].astype(int)
        if len(idx):
            cmp = compare_auc(d["y_val"][idx], p["val_pred"][idx], p["champion_gate_pred"], comparison_method,
                              confidence)
        else:
            cmp = {"method": comparison_method, "confidence": float(confidence), "n": 0}
        metrics["champion_comparison"] = cmp | {"n_excluded_champion_trained": int(len(d["y_val"]) - len(idx))}
    write_json(metrics, candidate_dir / "metrics.json")
    log.info(
        "validation accuracy %.4f, ROC AUC %.4f on %d validation records (logistic baseline: accuracy %.4f, AUC %.4f)",
        metrics["val_accuracy"],
        metrics["val_auc"],
        metrics["n_val"],
        base["accuracy"],
        base["roc_auc"],
    )
    return metrics


# --------------------------------------------------------------------------------------------- gates
def accuracy_gate(metrics: Metrics, min_val_accuracy: float) -> AccuracyGateResult:
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
    """Whether a run would retrain the champion as it was: same train and test digests, same recipe
    (seed included) and same validation share."""
    if not champion_manifest:
        return False
    champ_inputs = champion_manifest.get("inputs") or {}
    champ_recipe = (champion_manifest.get("metrics") or {}).get("recipe")
    champ_fraction = (champion_manifest.get("params") or {}).get("val_fraction")
    return (
        champ_inputs.get("train_sha256") == inputs.get("train_sha256")
        and champ_inputs.get("test_sha256") == inputs.get("test_sha256")
        and champ_recipe is not None
        and champ_recipe == recipe
        and champ_fraction == val_fraction
    )


def _fmt_comparison(c: dict) -> str:
    """One line for a paired AUC comparison: difference, both AUCs, interval, method, records."""
    return (
        f"challenger - champion AUC {c['difference']:+.4f} ({c['challenger_auc']:.4f} vs {c['champion_auc']:.4f}), "
        f"{c['confidence']:.0%} CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], {c['method']}, "
        f"n={c['n']} records neither model trained on"
    )


def champion_gate(metrics: Metrics, champion_version: str | None, tolerance: float, force_promote: bool = False,
                  min_records: int = defaults.MIN_GATE_RECORDS, same_inputs: bool = False,
                  champion_problem: str | None = None) -> GateDecision:
    """Challenger vs champion, fairly and with its uncertainty.

    Compares on ``metrics["champion_comparison"]`` (records neither model trained on). Promote when the
    lower end of the confidence interval of (challenger - champion) AUC is >= ``-tolerance``: the
    challenger is, at the configured confidence, not worse by more than the tolerance. When the run
    retrained on the champion's exact inputs and recipe (``same_inputs``), only a challenger better beyond
    the uncertainty (lower end > 0) replaces it. No comparison is made (and nothing promoted) when the
    champion's training records are unknown or fewer than ``min_records`` records remain.
    ``force_promote`` promotes anyway; the decision says so. ``champion_problem`` (the operator forced past
    a damaged champion, so ``champion_version`` is None) is recorded, and the reason says it, not "no
    champion yet".
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
        detail = _fmt_comparison(cmp)
        if same_inputs:
            promote = cmp["ci_low"] > 0
            outcome = "promote" if promote else "keep_champion"
            reason = (f"same inputs and recipe as champion {champion_version}: {'better' if promote else 'not better'} "
                      f"beyond the uncertainty ({detail}; needs lower end > 0)")
        else:
            promote = cmp["ci_low"] >= -tolerance
            outcome = "promote" if promote else "keep_champion"
            reason = f"{detail}; lower end {'>=' if promote else '<'} -tolerance {-tolerance:+.4f}"
    if not promote and force_promote:
        promote, outcome, reason = True, "promote", f"forced by operator ({outcome}: {reason})"
    if champion_problem:
        reason = f"forced by operator; the champion could not be compared: {champion_problem}"
    decision.update(promote=promote, decision=outcome, reason=reason)
    log.info("champion gate: %s (%s)", outcome, reason)
    return decision


MANIFEST_PACKAGES = (
    "turkey-pipeline", "tensorflow-cpu", "tensorflow", "keras", "numpy", "great-expectations", "apache-airflow"
)


def package_versions(names=MANIFEST_PACKAGES) -> dict:
    """Installed versions of ``names`` (those not installed are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """The commit of this checkout (``git rev-parse HEAD``), else ``$TURKEY_GIT_COMMIT`` (e.g. in an image)."""
    import subprocess

    from ml.config import REPO_ROOT

    try:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - not a git checkout (e.g. a container image)
        return os.environ.get("TURKEY_GIT_COMMIT")


def build_manifest(params: Mapping, validated: Validated, trained: Trained, metrics: Metrics,
                   gate: GateDecision | None = None, dag_id: str | None = None, run_id: str | None = None) -> dict:
    """What a trained model is, for its ``manifest.json``: the run (``dag_id``/``run_id``, None for
    ``turkey train``), its inputs and their digests, its settings (``params``, keyed as the DAG's params),
    the metrics, the champion ``gate`` decision (None when there was none), the validation reports, the
    code (git commit, package versions), device and record-id summary. The registry adds ``version`` and
    ``files``; :func:`same_training` reads ``inputs``, ``params.val_fraction`` and ``metrics.recipe`` back."""
    from ml.registry import now_iso

    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "created_at": now_iso(),
        "inputs": {
            "train_file": params["train_file"],
            "test_file": params["test_file"],
            "train_sha256": validated["train_sha256"],
            "test_sha256": validated["test_sha256"],
        },
        "params": dict(params),
        "metrics": dict(metrics),
        "gate": gate,
        "compared_with": gate["champion_version"] if gate else None,
        "validation_report": validated.get("report_html"),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": trained.get("device"),
        "record_ids": trained.get("record_ids"),
    }
