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


def test_train_settings_are_the_run_configuration_the_dag_params_come_from():
    """`turkey train`'s options fill the same RunConfig as the DAG's params; options left out keep its defaults."""
    from ml import cli
    from ml.config import RunConfig

    a = cli.build_parser().parse_args(["train", "--train", "t.json", "--out", "o", "--epochs", "3"])
    config = cli.train_config(a)
    assert config == RunConfig(train_file="t.json", test_file=None, epochs=3)
    assert config.training_recipe().epochs == 3 and config.training_recipe().seed == RunConfig().seed
    a = cli.build_parser().parse_args(["train", "--train", "t.json", "--out", "o", "--seed", "7", "--gate-method",
                                       "bootstrap", "--force-promote", "--mixed-precision"])
    config = cli.train_config(a)
    assert (config.seed, config.gate_method, config.force_promote, config.mixed_precision) == (7, "bootstrap", True,
                                                                                               True)


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


def test_train_writes_the_model_its_manifest_and_publishes_it(trained, demo_dir):
    """The shared `turkey train --publish` run (tests/conftest.py): files, one log line per epoch, the manifest a
    registered version gets, and -- with no champion yet -- the gate promotes it."""
    from ml.registry import Registry

    model_dir = trained.model_dir
    assert trained.status == 0
    for f in ("model.keras", "metrics.json", "history.json", "curves.png", "submission.csv", "record_ids.json"):
        assert (model_dir / f).is_file()
    assert any(line.startswith("epoch 1/3") for line in trained.log)  # one log line per epoch
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert 0 <= metrics["val_accuracy"] <= 1 and "baseline_logreg" in metrics
    assert metrics["epochs_run"] <= 3 and metrics["recipe"]["epochs"] == 3 and metrics["train_seconds"] > 0
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["metrics"] == metrics and manifest["gate"]["reason"] == "no champion yet"
    assert manifest["inputs"]["train_file"] == str(demo_dir / "train.json")
    assert len(manifest["inputs"]["train_sha256"]) == 64 and manifest["params"]["min_records"] == 50
    assert manifest["params"]["val_fraction"] == 0.25 and manifest["record_ids"]["n_train_ids"] == metrics["n_train"]
    reg = Registry(trained.registry)
    assert reg.versions() == [trained.version] and reg.champion()["user"] == "tester"
    assert reg.manifest(trained.version)["run_id"] == manifest["run_id"]


def test_score_writes_one_row_per_record_in_input_order(trained, demo_dir, tmp_path, capsys):
    from ml import cli

    sub = tmp_path / "sub.csv"
    assert cli.main(["score", "--model", str(trained.model_dir), "--input", str(demo_dir / "test.json"),
                     "--output", str(sub)]) == 0
    assert f"wrote {sub} (120 rows)" in capsys.readouterr().out
    rows = list(csv.reader(sub.open()))
    ids = [r["vid_id"] for r in json.loads((demo_dir / "test.json").read_text())]
    assert rows[0] == ["vid_id", "is_turkey"] and [r[0] for r in rows[1:]] == ids


@pytest.mark.slow
def test_train_gates_against_the_registry_champion_and_fails_below_the_accuracy_floor(trained, demo_dir, tmp_path,
                                                                                       capsys):
    """`turkey train --registry --publish` compares with the champion on records neither trained on and
    records the decision; a failed accuracy gate is exit 1 with the figure and the threshold, and nothing is
    published."""
    from ml import cli
    from ml.registry import Registry
    from tests.conftest import copy_tree

    registry = copy_tree(trained.registry, tmp_path / "registry")
    args = ["train", "--train", str(demo_dir / "train.json"), "--out", str(tmp_path / "weak"), "--recipe", "seed",
            "--epochs", "1", "--min-records", "50", "--min-gate-records", "30", "--registry", str(registry),
            "--min-val-accuracy", "0.999", "--publish"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "min_val_accuracy=0.9990" in err and "Traceback" not in err
    gate = json.loads((tmp_path / "weak" / "manifest.json").read_text())["gate"]
    assert gate["champion_version"] == trained.version and gate["comparison"]["n"] >= 30 and gate["reason"]
    assert Registry(registry).versions() == [trained.version]  # the failed candidate was not published


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


# ------------------------------------------------------------------------------------- min_records
def test_min_records_applies_to_training_files_only(tmp_path, capsys):
    from ml.cli import main
    from ml.demo import generate

    paths = generate(tmp_path, train_size=40, test_size=40, seed=5)
    assert main(["validate", str(paths["test"]), "--split", "test"]) == 0
    assert "valid test file, 40 records" in capsys.readouterr().out
    assert main(["validate", str(paths["train"]), "--split", "train"]) == 1  # 40 < 100 training records
    assert "records.min_count" in capsys.readouterr().err
