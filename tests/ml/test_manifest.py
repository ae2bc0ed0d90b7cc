"""What a trained model is (ml.manifest): the manifest the registry and `turkey train` write, record ids."""

import json

import numpy as np

from ml.config import RunConfig
from ml.manifest import build_manifest, trained_ids, write_record_ids
from ml.promotion import champion_gate, same_training


def test_the_manifest_is_what_same_training_reads_back():
    """build_manifest (registry and `turkey train` alike): inputs, settings, metrics, gate; a retrain with the
    same digests, recipe and validation share is recognised from it."""
    config = RunConfig(seed=1)
    validated = {"train_sha256": "a" * 64, "test_sha256": "b" * 64, "report_html": {"train": "t.html"}}
    trained = {"device": "CPU", "record_ids": {"n_train_ids": 3}, "champion_version": "v1", "champion_problem": None}
    metrics = {"val_accuracy": 0.9, "val_auc": 0.95, "recipe": {"name": "default", "seed": 1}}
    gate = champion_gate(metrics, "v1", 0.005, min_records=100)
    man = json.loads(json.dumps(build_manifest(config, validated, trained, metrics, gate, "turkey_training", "r1")))
    assert man["run_id"] == "r1" and man["compared_with"] == "v1" and man["gate"]["decision"] == "no_comparison"
    assert man["metrics"] == metrics and man["params"] == config.params() and man["params"]["seed"] == 1 and man["device"] == "CPU"
    assert man["inputs"] == {"train_file": "landing/train.json", "test_file": "landing/test.json",
                             "train_sha256": "a" * 64, "test_sha256": "b" * 64}
    assert man["validation_report"] == {"train": "t.html"} and man["record_ids"] == {"n_train_ids": 3}
    assert same_training(man, validated, metrics["recipe"], 0.25)
    cli = build_manifest(config, validated, trained, metrics)
    assert cli["gate"] is None and cli["compared_with"] is None and cli["dag_id"] is None


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
    assert trained_ids(reg, "v1") == {"a", "b"}
    legacy = tmp_path / "art" / "models" / "v0"  # registered before record_ids.json existed
    legacy.mkdir(parents=True)
    (legacy / "manifest.json").write_text("{}")
    assert trained_ids(reg, "v0") is None


def test_metric_summary_is_the_announced_subset():
    from ml.manifest import SUMMARY_METRICS, metric_summary

    assert metric_summary({"val_accuracy": 0.9, "val_auc": 0.95, "n_val": 10}) == {"val_accuracy": 0.9, "val_auc": 0.95}
    assert metric_summary({}) == dict.fromkeys(SUMMARY_METRICS)
