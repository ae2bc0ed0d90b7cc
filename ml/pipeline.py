"""The pipeline's steps as plain functions: paths in, small JSON-able dicts out.

The Airflow tasks (``plugins/turkey_airflow``) and the ``turkey`` CLI both call these; nothing here
imports Airflow. Large data moves between steps as files under a per-run work folder on the shared
artifacts root, never through XCom. Only :func:`train_step` (and scoring) imports TensorFlow.

Each step's result has a type (a ``TypedDict``, so it stays a plain dict that XCom carries as JSON):
validate -> :class:`Validated`, prepare -> :class:`Prepared`, train -> :class:`Trained` (and
:class:`TrainedVsChampion`: which champion it was scored against), evaluate -> :class:`Metrics`. The gates
and the promote decision are :mod:`ml.promotion`; what a trained model is, :mod:`ml.manifest`. Settings
come from the run's :class:`ml.config.RunConfig`.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

from ml.data import load_arrays, pad_frames, save_arrays
from ml.errors import DataError, TurkeyError
from ml.fsutil import atomic_output
from ml.manifest import RECORD_IDS_FILE, write_record_ids

if TYPE_CHECKING:
    from ml.config import Recipe, RunConfig

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
    reference_scoring: dict | None


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
    reference_comparison: NotRequired[dict]
    device: str
    train_seconds: float
    epochs_run: int
    recipe: dict


# --------------------------------------------------------------------------------------------- validate
def validate_inputs(train_path, test_path, work_dir, *, min_records: int, report_dir=None, reject: bool = True
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
def prepare_step(train_npz, test_npz, work_dir, val_fraction: float, source: str | None = None) -> Prepared:
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


# --------------------------------------------------------------------------------------------- train
def write_submission(ids, probs, path) -> str:
    """CSV ``vid_id,is_turkey`` (probabilities), one row per record in input order; atomic."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["vid_id", "is_turkey"])
        for vid, p in zip(ids, probs, strict=True):
            w.writerow([vid, f"{float(p):.6f}"])
    return str(path)


def _score_compared(role: str, model_path, trained_ids: set | None, d: dict, preds: dict) -> dict:
    """Score one model the candidate is compared with (``role``: champion or reference) on this run's
    validation records it did NOT train on: ``<role>_gate_index`` into the validation arrays and
    ``<role>_gate_pred`` go into ``preds``. Unknown training ids: no scoring (no fair comparison)."""
    import numpy as np

    from ml.scoring.predict import load_model

    info = {"trained_ids_known": trained_ids is not None, "n_val": int(len(d["ids_val"]))}
    if trained_ids is None:
        log.warning("%s %s does not record its training ids: it cannot be compared fairly", role, model_path)
        return info
    seen = np.array([str(i) in trained_ids for i in d["ids_val"]], dtype=bool)
    index = np.flatnonzero(~seen)
    preds[f"{role}_gate_index"] = index
    if len(index):
        preds[f"{role}_gate_pred"] = load_model(model_path).predict(d["x_val"][index]).reshape(-1).astype(float)
    log.info("scored %s %s on %d of this run's %d validation records (%d excluded: it trained on them)", role,
             model_path, len(index), len(d["ids_val"]), int(seen.sum()))
    return info | {f"n_excluded_{role}_trained": int(seen.sum()), "n_gate": int(len(index))}


def train_step(split_npz, test_padded_npz, out_dir, recipe: Recipe, compared: dict | None = None,
               split: dict | None = None) -> Trained:
    """Train the candidate and do all TensorFlow work of the run in this one process.

    Writes into ``out_dir``: model.keras, history.json, curves.png, record_ids.json (the ids trained and
    validated on), profile.json (the training inputs' profile, :mod:`ml.scoring.skew`), predictions.npz
    (validation and test probabilities) and, when ``test_padded_npz`` is given, submission.csv.
    ``compared``: ``{role: (model path, the ids it trained on or None)}`` for the models the gates compare
    the candidate with (``champion``, and the lineage ``reference`` of :mod:`ml.promotion`): each is scored
    on this run's validation records it did not train on (:func:`_score_compared`).
    """
    from ml.fsutil import write_json
    from ml.scoring.skew import PROFILE_FILE, pooled, training_profile
    from ml.tflog import import_tensorflow
    from ml.train import describe_device, fit, predict, save_curves, save_model

    import_tensorflow()  # its start-up lines at INFO, not on stderr (which a task logs at ERROR)

    rc = recipe
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = load_arrays(split_npz)
    device = describe_device()
    log.info("training on %s with recipe %s", device, rc.to_dict())
    model, history, seconds = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], rc)
    log.info("trained %d epoch(s) in %.1fs", len(history.get("loss", [])), seconds)
    preds = {"val_pred": predict(model, d["x_val"])}
    if test_padded_npz is not None:
        te = load_arrays(test_padded_npz)
        preds["test_pred"] = predict(model, te["x"])
        write_submission(te["ids"], preds["test_pred"], out / "submission.csv")
    scoring = {role: _score_compared(role, path, ids, d, preds)
               for role, (path, ids) in (compared or {}).items() if path and Path(path).is_file()}
    gate_ids = d["ids_val"][preds["champion_gate_index"]] if "champion_gate_index" in preds else None
    record_ids = write_record_ids(d["ids_train"], d["ids_val"], split, out / RECORD_IDS_FILE, gate_ids)
    # what the training inputs looked like, for the training-serving skew of every batch it scores
    write_json(training_profile(pooled(d["x_train"], d["len_train"])), out / PROFILE_FILE)
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
        "champion_scoring": scoring.get("champion"),
        "reference_scoring": scoring.get("reference"),
    }


# --------------------------------------------------------------------------------------------- evaluate
#: Which records each figure in ``metrics.json`` was computed on (also shown by ``turkey models show``).
EVALUATED_ON = {
    "val_accuracy, val_auc, baseline_logreg, accuracy gate": (
        "this run's validation records (the vid_id-hash validation share of the training file); the same "
        "records drive early stopping and the learning-rate schedule, so these figures are slightly "
        "optimistic (measured: BENCHMARKS.md section 3, validation vs held-out AUC)"
    ),
    "reference_comparison": (
        "this run's validation records that the lineage reference (ml.promotion) did not train on; the "
        "challenger never trained on them either"
    ),
    "champion_comparison": (
        "this run's validation records that the champion did not train on (from its record_ids.json); "
        "the challenger never trained on them either"
    ),
}


def evaluate_step(split_npz, trained: Trained, config: RunConfig) -> Metrics:
    """Validation accuracy/AUC, the logistic-regression baseline on the same split (seeded by
    ``config.seed``), and -- when the champion was scored -- the paired champion/challenger AUC comparison
    on the records neither trained on (:func:`ml.evaluate.compare_auc` with ``config``'s method and
    confidence), with the :data:`TRAINING_FACTS` of ``trained``; writes ``metrics.json`` into the candidate
    folder."""
    from ml.evaluate import binary_metrics, compare_auc, logistic_baseline
    from ml.fsutil import write_json

    candidate_dir = Path(trained["candidate_dir"])
    d = load_arrays(split_npz)
    p = load_arrays(candidate_dir / "predictions.npz")
    m = binary_metrics(d["y_val"], p["val_pred"])
    base = logistic_baseline(d["x_train"], d["len_train"], d["y_train"], d["x_val"], d["len_val"], d["y_val"],
                             config.seed)
    metrics: Metrics = {
        "val_accuracy": m["accuracy"],
        "val_auc": m["roc_auc"],
        "n_train": int(len(d["y_train"])),
        "n_val": m["n"],
        "baseline_logreg": {"val_accuracy": base["accuracy"], "val_auc": base["roc_auc"]},
        "evaluated_on": EVALUATED_ON,
        **{key: trained[key] for key in TRAINING_FACTS},
    }
    for role in ("champion", "reference"):
        if f"{role}_gate_index" not in p:
            continue
        idx = p[f"{role}_gate_index"].astype(int)
        if len(idx):
            cmp = compare_auc(d["y_val"][idx], p["val_pred"][idx], p[f"{role}_gate_pred"], config.gate_method,
                              config.gate_confidence)
        else:
            cmp = {"method": config.gate_method, "confidence": float(config.gate_confidence), "n": 0}
        metrics[f"{role}_comparison"] = cmp | {f"n_excluded_{role}_trained": int(len(d["y_val"]) - len(idx))}
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
