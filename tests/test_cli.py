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
