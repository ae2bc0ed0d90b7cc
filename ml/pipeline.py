"""The pipeline's steps as plain functions: paths in, small JSON-able dicts out.

The Airflow tasks (``plugins/turkey_airflow``) and the ``turkey`` CLI both call these; nothing here
imports Airflow. Large data moves between steps as files under a per-run work folder on the shared
artifacts root, never through XCom. Only :func:`train_step` (and scoring) imports TensorFlow.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from pathlib import Path

from ml.data import load_arrays, pad_frames, save_arrays
from ml.errors import GateError, TurkeyError
from ml.fsutil import atomic_output

log = logging.getLogger("ml.pipeline")


# --------------------------------------------------------------------------------------------- validate
def validate_inputs(
    train_path, test_path, work_dir, report_dir=None, min_records: int = 100, reject: bool = True
) -> dict:
    """Validate train and (when given) test; on success write compact arrays (``train.npz``, ``test.npz``).

    On failure the offending file is moved to ``rejected/`` beside its folder (when ``reject``) and a
    DataError naming the file, rule and records is raised. Nothing else is written.
    """
    from ml.validation import reject_file, validate_file

    work_dir = Path(work_dir)
    report_dir = Path(report_dir) if report_dir else work_dir / "validation"
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
            if reject and Path(path).is_file():
                moved = reject_file(path, report_dir / split)
                log.error("moved rejected input %s to %s", path, moved)
            out.raise_for_failures()
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


# --------------------------------------------------------------------------------------------- prepare
def prepare_step(train_npz, test_npz, work_dir, val_fraction: float = 0.25, seed: int = 42) -> dict:
    """Stratified seeded split and Keras-style padding; writes ``split.npz`` and ``test_padded.npz``."""
    from ml.prepare import split_arrays

    tr = load_arrays(train_npz)
    if (tr["labels"] < 0).any():
        raise TurkeyError(f"{train_npz}: {int((tr['labels'] < 0).sum())} training record(s) have no valid label")
    d = split_arrays(tr["frames"], tr["lengths"], tr["labels"], tr["ids"], val_fraction, seed)
    split_npz = save_arrays(Path(work_dir) / "split.npz", **d)
    test_padded = None
    if test_npz is not None:
        te = load_arrays(test_npz)
        test_padded = save_arrays(
            Path(work_dir) / "test_padded.npz", x=pad_frames(te["frames"], te["lengths"]), ids=te["ids"]
        )
    n_train, n_val = len(d["y_train"]), len(d["y_val"])
    log.info("split %d records: %d train / %d validation (seed %d)", n_train + n_val, n_train, n_val, seed)
    return {
        "split_npz": split_npz,
        "test_padded_npz": test_padded,
        "n_train": n_train,
        "n_val": n_val,
        "val_positive_rate": float(d["y_val"].mean()) if n_val else 0.0,
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


def train_step(split_npz, test_padded_npz, out_dir, recipe: dict | None = None, champion_model=None) -> dict:
    """Train the candidate and do all TensorFlow work of the run in this one process.

    Writes into ``out_dir``: model.keras, history.json, curves.png, predictions.npz (validation and test
    probabilities, and the current champion's validation probabilities when ``champion_model`` is
    given, for the champion/challenger gate) and, when ``test_padded_npz`` is given, submission.csv.
    """
    from ml.fsutil import write_json
    from ml.train import describe_device, fit, make_recipe, predict, save_curves, save_model

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
    if champion_model and Path(champion_model).is_file():
        import keras

        champ = keras.models.load_model(champion_model, compile=False)
        preds["champion_val_pred"] = predict(champ, d["x_val"])
        log.info("scored champion %s on this run's validation split", champion_model)
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
    }


# --------------------------------------------------------------------------------------------- evaluate
def evaluate_step(split_npz, candidate_dir, seed: int = 42, extra: dict | None = None) -> dict:
    """Validation accuracy/AUC, the logistic-regression baseline on the same split; ``metrics.json``."""
    from ml.evaluate import binary_metrics, logistic_baseline
    from ml.fsutil import write_json

    d = load_arrays(split_npz)
    p = load_arrays(Path(candidate_dir) / "predictions.npz")
    m = binary_metrics(d["y_val"], p["val_pred"])
    base = logistic_baseline(d["x_train"], d["len_train"], d["y_train"], d["x_val"], d["len_val"], d["y_val"], seed)
    metrics = {
        "val_accuracy": m["accuracy"],
        "val_auc": m["roc_auc"],
        "n_train": int(len(d["y_train"])),
        "n_val": m["n"],
        "baseline_logreg": {"val_accuracy": base["accuracy"], "val_auc": base["roc_auc"]},
    }
    if "champion_val_pred" in p:
        c = binary_metrics(d["y_val"], p["champion_val_pred"])
        metrics["champion_on_this_split"] = {"val_accuracy": c["accuracy"], "val_auc": c["roc_auc"]}
    metrics.update(extra or {})
    write_json(metrics, Path(candidate_dir) / "metrics.json")
    log.info(
        "validation accuracy %.4f, ROC AUC %.4f (logistic baseline: accuracy %.4f, AUC %.4f)",
        metrics["val_accuracy"],
        metrics["val_auc"],
        base["accuracy"],
        base["roc_auc"],
    )
    return metrics


# --------------------------------------------------------------------------------------------- gates
def accuracy_gate(metrics: dict, min_val_accuracy: float) -> dict:
    acc = metrics["val_accuracy"]
    if not acc >= min_val_accuracy:
        raise GateError(
            f"validation accuracy {acc:.4f} is below the threshold min_val_accuracy={min_val_accuracy:.4f}; "
            "nothing was published"
        )
    return {"passed": True, "val_accuracy": acc, "min_val_accuracy": min_val_accuracy}


def champion_gate(metrics: dict, champion_version: str | None, tolerance: float, force_promote: bool = False) -> dict:
    """Challenger vs champion on this run's validation split: promote unless AUC is worse by > tolerance."""
    challenger = metrics["val_auc"]
    champ = metrics.get("champion_on_this_split")
    decision = {
        "champion_version": champion_version,
        "challenger_val_auc": challenger,
        "champion_val_auc": champ["val_auc"] if champ else None,
        "tolerance": tolerance,
        "force_promote": bool(force_promote),
    }
    if champion_version is None or champ is None:
        decision.update(promote=True, decision="promote", reason="no champion yet")
    elif challenger >= champ["val_auc"] - tolerance:
        decision.update(
            promote=True,
            decision="promote",
            reason=f"challenger AUC {challenger:.4f} >= champion AUC {champ['val_auc']:.4f} - tolerance {tolerance}",
        )
    elif force_promote:
        decision.update(
            promote=True,
            decision="promote",
            reason=f"forced by operator (challenger AUC {challenger:.4f} < champion AUC {champ['val_auc']:.4f} - {tolerance})",
        )
    else:
        decision.update(
            promote=False,
            decision="keep_champion",
            reason=f"challenger AUC {challenger:.4f} < champion AUC {champ['val_auc']:.4f} - tolerance {tolerance}",
        )
    log.info("champion gate: %s (%s)", decision["decision"], decision["reason"])
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
    import subprocess

    from ml.config import REPO_ROOT

    try:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - not a git checkout (e.g. a container image)
        return os.environ.get("TURKEY_GIT_COMMIT")


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())
