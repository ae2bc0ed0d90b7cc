"""The `turkey` command line: exit codes 0 / 1 (bad input, failed gate; one line, no traceback) / 2 (usage)."""

import csv
import json
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "ml.cli"]


def run(*args, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("validate", "x.json").returncode == 2  # --split missing
    assert run("validate", "x.json", "--split", "dev").returncode == 2
    assert run("bogus").returncode == 2


def test_bad_option_values_are_usage_errors_exit_2():
    """An unknown recipe or a non-positive count is refused by argparse (exit 2), naming the choices."""
    out = run("train", "--train", "t.json", "--out", "o", "--recipe", "nope")
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr and "'default'" in out.stderr
    for option in ("--epochs", "--batch-size", "--ensemble-seeds", "--min-records"):
        out = run("train", "--train", "t.json", "--out", "o", option, 0)
        assert out.returncode == 2 and "must be at least 1" in out.stderr, (option, out.stderr)
    out = run("train", "--train", "t.json", "--out", "o", "--val-fraction", 1)
    assert out.returncode == 2 and "between 0 and 1" in out.stderr


def test_a_bug_is_not_a_usage_error(monkeypatch):
    """A ValueError from inside a command is a bug: it propagates with its traceback, not exit 2."""
    from ml import cli

    def buggy(a):
        raise ValueError("a real bug")

    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["demo-data"].set_defaults(func=buggy)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    with pytest.raises(ValueError, match="a real bug"):
        cli.main(["demo-data", "--out", "unused"])


def test_train_settings_use_the_dag_param_names_and_defaults():
    """`turkey train`'s recorded settings are keyed and defaulted as the DAG's params, recipe included."""
    from airflow.dag_processing.dagbag import DagBag

    from ml import cli, defaults

    a = cli.build_parser().parse_args(["train", "--train", "t.json", "--out", "o", "--epochs", "3"])
    params = cli.train_params(a)
    dag_params = DagBag(dag_folder="dags").dags["turkey_training"].params
    assert set(params) <= set(dag_params)
    for key in set(params) - {"train_file", "test_file", "epochs", "min_val_accuracy"}:
        assert params[key] == dag_params[key], key  # same defaults on both edges
    assert defaults.recipe_from_params(params) == {
        "name": "default", "epochs": 3, "batch_size": None, "learning_rate": None, "seed": 42,
        "mixed_precision": False, "ensemble_seeds": None,
    }
    assert defaults.recipe_from_params(dict(dag_params)) == defaults.recipe_from_params(params) | {"epochs": None}


def test_help_exits_0():
    out = run("--help")
    assert out.returncode == 0 and "demo-data" in out.stdout


def test_demo_data_writes_kaggle_format(tmp_path):
    out = run("demo-data", "--out", tmp_path, "--train-size", 60, "--test-size", 20, "--seed", 1)
    assert out.returncode == 0, out.stderr
    train = json.loads((tmp_path / "train.json").read_text())
    test = json.loads((tmp_path / "test.json").read_text())
    assert len(train) == 60 and len(test) == 20
    assert set(train[0]) == {"vid_id", "start_time_seconds_youtube_clip", "end_time_seconds_youtube_clip",
                             "audio_embedding", "is_turkey"}
    assert "is_turkey" not in test[0]
    assert all(1 <= len(r["audio_embedding"]) <= 10 for r in train + test)
    assert any(len(r["audio_embedding"]) < 10 for r in train)  # some short clips
    assert all(len(f) == 128 and all(0 <= v <= 255 for v in f) for r in train for f in r["audio_embedding"])


def test_demo_data_temporal_family(tmp_path):
    out = run("demo-data", "--out", tmp_path, "--train-size", 60, "--test-size", 20, "--seed", 1, "--family", "temporal")
    assert out.returncode == 0 and "temporal family" in out.stdout, out.stderr
    train = json.loads((tmp_path / "train.json").read_text())
    assert len(train) == 60 and all(2 <= len(r["audio_embedding"]) <= 10 for r in train)
    assert run("demo-data", "--out", tmp_path, "--family", "bogus").returncode == 2


def test_validate_missing_file_exit_1_no_traceback(tmp_path):
    out = run("validate", tmp_path / "nope.json", "--split", "train")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "nope.json" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_train_and_score_round_trip(tmp_path, demo_dir):
    model_dir = tmp_path / "model"
    out = run("train", "--train", demo_dir / "train.json", "--out", model_dir, "--epochs", 3, "--min-records", 50)
    assert out.returncode == 0, out.stderr[-3000:]
    for f in ("model.keras", "metrics.json", "history.json", "curves.png"):
        assert (model_dir / f).is_file()
    assert "epoch 1/3" in out.stderr  # one log line per epoch
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert 0 <= metrics["val_accuracy"] <= 1 and "baseline_logreg" in metrics
    assert metrics["epochs_run"] <= 3 and metrics["recipe"]["epochs"] == 3 and metrics["train_seconds"] > 0
    # the same manifest a registered version gets (ml.pipeline.build_manifest), without a run or a gate
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["run_id"] is None and manifest["gate"] is None and manifest["metrics"] == metrics
    assert manifest["inputs"]["train_file"] == str(demo_dir / "train.json") and manifest["inputs"]["test_file"] is None
    assert len(manifest["inputs"]["train_sha256"]) == 64 and manifest["params"]["min_records"] == 50
    assert manifest["params"]["val_fraction"] == 0.25 and manifest["record_ids"]["n_train_ids"] == metrics["n_train"]

    sub = tmp_path / "sub.csv"
    out = run("score", "--model", model_dir, "--input", demo_dir / "test.json", "--output", sub)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.reader(sub.open()))
    ids = [r["vid_id"] for r in json.loads((demo_dir / "test.json").read_text())]
    assert rows[0] == ["vid_id", "is_turkey"] and [r[0] for r in rows[1:]] == ids

    # A failed gate is exit 1 with the figure and the threshold.
    out = run("train", "--train", demo_dir / "train.json", "--out", tmp_path / "m2", "--epochs", 1,
              "--min-records", 50, "--min-val-accuracy", 0.999)
    assert out.returncode == 1 and "min_val_accuracy=0.9990" in out.stderr and "Traceback" not in out.stderr


def test_score_with_missing_model_exit_1(tmp_path, demo_dir):
    out = run("score", "--model", tmp_path / "none", "--input", demo_dir / "test.json", "--output", tmp_path / "s.csv")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "s.csv").exists()


def test_models_commands(tmp_path):
    art = tmp_path / "art"
    out = run("models", "--artifacts", art, "list")
    assert out.returncode == 0 and "no model versions" in out.stdout
    out = run("models", "--artifacts", art, "show", "champion")
    assert out.returncode == 1 and "no champion" in out.stderr
    out = run("models", "--artifacts", art, "promote", "v-missing")
    assert out.returncode == 1
