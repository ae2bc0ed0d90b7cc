"""What a trained model is: its ``manifest.json``, its ``record_ids.json`` and the short metric summary
that announcements carry.

:func:`build_manifest` is the one builder: the DAG's ``register`` task and ``turkey train`` both call it.
:func:`metric_summary` is the one subset of ``metrics.json`` that asset events, notifications and the
CLI show. Nothing here imports TensorFlow or Airflow.
"""

from __future__ import annotations

import json
import logging
import posixpath
import subprocess
from pathlib import Path

from ml.fsutil import write_json

log = logging.getLogger(__name__)

RECORD_IDS_FILE = "record_ids.json"
#: The figures every announcement of a version carries (asset events, notifications, ``turkey train``).
SUMMARY_METRICS = ("val_accuracy", "val_auc")
MANIFEST_PACKAGES = (
    "turkey-pipeline", "tensorflow-cpu", "tensorflow", "keras", "numpy", "great-expectations", "apache-airflow"
)


def metric_summary(metrics: dict) -> dict:
    """The :data:`SUMMARY_METRICS` of a version's ``metrics.json`` (missing ones as None)."""
    return {key: (metrics or {}).get(key) for key in SUMMARY_METRICS}


def write_record_ids(ids_train, ids_val, split: dict | None, path, gate_ids=None) -> dict:
    """``record_ids.json``: the ids a version trained on, validated on and (``gate``, or null without a
    fair comparison) was compared with the champion on; sorted, unique. Returns a summary."""
    train = sorted({str(i) for i in ids_train})
    val = sorted({str(i) for i in ids_val})
    gate = None if gate_ids is None else sorted({str(i) for i in gate_ids})
    write_json({"format": 1, "id_field": "vid_id", "split": split, "train": train, "validation": val,
                "gate": gate}, path)
    return {"file": Path(path).name, "n_train_ids": len(train), "n_validation_ids": len(val),
            "n_gate_ids": None if gate is None else len(gate)}


def trained_ids(registry, version: str) -> set[str] | None:
    """The ids ``version`` trained on, from its ``record_ids.json``; ``None`` for versions registered
    before versions recorded them (their training records are unknown)."""
    path = posixpath.join(registry.version_path(version), RECORD_IDS_FILE)
    if not registry.fs.isfile(path):
        return None
    with registry.fs.open(path, "rb") as fh:
        return set(json.loads(fh.read())["train"])


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
    """The commit of this checkout (``git rev-parse HEAD``), else ``TURKEY_GIT_COMMIT`` (e.g. in an image)."""
    from ml.settings import REPO_ROOT, settings

    try:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
    except Exception:  # noqa: BLE001 - not a git checkout (e.g. a container image)
        return settings().git_commit


def build_manifest(config, validated: dict, trained: dict, metrics: dict, gate: dict | None = None,
                   dag_id: str | None = None, run_id: str | None = None) -> dict:
    """What a trained model is, for its ``manifest.json``: the run (``dag_id``/``run_id``, None for
    ``turkey train``), its inputs and their digests, its settings (``config``, a
    :class:`ml.config.RunConfig`, stored as the DAG's params), the metrics, the champion ``gate`` decision
    (None when there was none), the validation reports, the code (git commit, package versions), device and
    record-id summary. The registry adds ``version`` and ``files``; :func:`ml.promotion.same_training`
    reads ``inputs``, ``params.val_fraction`` and ``metrics.recipe`` back."""
    from ml.registry import now_iso

    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "created_at": now_iso(),
        "inputs": {
            "train_file": config.train_file,
            "test_file": config.test_file,
            "train_sha256": validated["train_sha256"],
            "test_sha256": validated["test_sha256"],
        },
        "params": config.params(),
        "metrics": dict(metrics),
        "gate": gate,
        "compared_with": gate["champion_version"] if gate else None,
        "validation_report": validated.get("report_html"),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": trained.get("device"),
        "record_ids": trained.get("record_ids"),
    }
