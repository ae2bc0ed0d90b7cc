"""The MLflow mirror against a real tracking server (issue 23): runs with their params, stepped metrics,
artifacts and tags; one model version per registered version; the ``champion`` alias following promotions
and rollbacks (CLI); the model loading from ``models:/<name>@champion`` and scoring like our submission; a
half-logged run replaced; scoring runs; and MLflow down (then up) never failing a promotion, with the lag
recorded and caught up idempotently."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml import mlflow_mirror
from tests.support import REPO


def _experiment_runs(client, name: str) -> list:
    exp = client.get_experiment_by_name(name)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def _alias_version(client, model: str) -> str:
    return client.get_model_version_by_alias(model, "champion").tags["turkey.version"]


def _cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "ml.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)


def test_sync_logs_each_version_once_with_its_params_metrics_artifacts_and_the_alias(two_versions, mirror_env):
    reg, first, second = two_versions
    client = mirror_env["client"]
    done = mlflow_mirror.sync(reg)
    assert (done["runs_logged"], done["model_versions_created"]) == (2, 2)
    assert done["champion"]["version"] == first

    runs = {r.data.tags["turkey.version"]: r for r in _experiment_runs(client, f"{mirror_env['experiment']}-training")}
    assert set(runs) == {first, second}
    run, manifest = runs[first], reg.manifest(first)
    metrics = manifest["metrics"]
    assert run.data.tags["dag_id"] == str(manifest["dag_id"]) and run.data.tags["run_id"] == manifest["run_id"]
    assert run.data.tags["turkey.gate"] == manifest["gate"]["decision"]
    assert run.data.params["recipe.epochs"] == str(metrics["recipe"]["epochs"])
    assert run.data.params["inputs.train_sha256"] == manifest["inputs"]["train_sha256"]
    assert run.data.metrics["val_auc"] == pytest.approx(metrics["val_auc"])
    history = json.loads(Path(reg.display(reg.version_path(first, "history.json"))).read_text())
    steps = client.get_metric_history(run.info.run_id, "epoch_loss")
    assert [m.step for m in steps] == list(range(len(history["loss"])))
    assert [m.value for m in steps] == pytest.approx(history["loss"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "history.json", "curves.png", "manifest.json", "decision.json"} <= artifacts
    logged = client.get_logged_model(run.data.tags["turkey.model_uri"].split("/")[-1])
    assert logged.source_run_id == run.info.run_id and str(logged.status) in ("READY", "LoggedModelStatus.READY")
    assert _alias_version(client, mirror_env["model"]) == first

    again = mlflow_mirror.sync(reg)  # idempotent: nothing new, nothing twice
    assert (again["runs_logged"], again["model_versions_created"], again["replaced"]) == (0, 0, 0)
    assert len(_experiment_runs(client, f"{mirror_env['experiment']}-training")) == 2
    assert len(client.search_model_versions(f"name='{mirror_env['model']}'")) == 2


def test_the_champion_alias_loads_and_scores_like_our_submission(two_versions, mirror_env, demo_dir):
    import mlflow

    import ml.model  # noqa: F401  (registers AttentionPooling before MLflow loads the model)
    from ml.data import pad_frames
    from ml.scoring.predict import validated_records

    reg, first, _ = two_versions
    mlflow_mirror.sync(reg)
    model = mlflow.keras.load_model(f"models:/{mirror_env['model']}@champion")
    records = validated_records(demo_dir / "test.json")
    probs = model.predict(pad_frames(records.frames, records.lengths).astype("float32"), verbose=0).reshape(-1)
    with open(reg.display(reg.submission_file())) as fh:
        ours = {row["vid_id"]: float(row["is_turkey"]) for row in csv.DictReader(fh)}
    assert len(ours) == len(records) > 0
    assert np.abs(np.array([ours[i] for i in records.ids]) - probs).max() < 1e-5  # CSV holds 6 decimals


def test_promote_and_rollback_move_the_alias(two_versions, mirror_env):
    reg, first, second = two_versions
    client = mirror_env["client"]
    mlflow_mirror.sync(reg)
    out = _cli("models", "--artifacts", reg.root, "promote", second, "--user", "alice")
    assert out.returncode == 0 and "mlflow: synced" in out.stdout, out.stdout + out.stderr
    assert _alias_version(client, mirror_env["model"]) == second
    out = _cli("models", "--artifacts", reg.root, "promote", first, "--user", "alice", "--reason", "roll back")
    assert out.returncode == 0 and "mlflow: synced" in out.stdout, out.stdout + out.stderr
    assert reg.champion_version() == first and _alias_version(client, mirror_env["model"]) == first
    assert len(client.search_model_versions(f"name='{mirror_env['model']}'")) == 2


def test_a_half_logged_run_is_deleted_and_logged_again(two_versions, mirror_env):
    reg, first, _ = two_versions
    client = mirror_env["client"]
    exp = client.create_experiment(f"{mirror_env['experiment']}-training")
    cut = client.create_run(exp, tags={"turkey.version": first})  # a sync killed before its last tag
    done = mlflow_mirror.sync(reg)
    assert done["replaced"] == 1 and done["runs_logged"] == 2
    assert client.get_run(cut.info.run_id).info.lifecycle_stage == "deleted"
    live = [r for r in _experiment_runs(client, f"{mirror_env['experiment']}-training")
            if r.data.tags.get("turkey.version") == first]
    assert len(live) == 1 and live[0].data.tags[mlflow_mirror.COMPLETE_TAG] == mlflow_mirror.COMPLETE


def test_scorings_become_scoring_runs_with_their_scores(two_versions, mirror_env, tmp_path):
    from ml.config import ScoringConfig
    from ml.demo import generate_batch
    from ml.scoring.job import score_batches

    reg, first, _ = two_versions
    batches = tmp_path / "batches"
    generate_batch(batches / "week-50.json", 40, seed=5)
    report = score_batches(reg, ScoringConfig.from_params({}), batches, None, "scoring-run-1", tmp_path / "work")
    assert [b["status"] for b in report["batches"]] == ["published"], report
    done = mlflow_mirror.sync(reg)
    assert done["scoring_runs_logged"] == 1
    [run] = _experiment_runs(mirror_env["client"], f"{mirror_env['experiment']}-scoring")
    assert run.data.tags["turkey.batch"] == "week-50" and run.data.tags["turkey.version"] == first
    assert run.data.tags["turkey.published"] == "true" and run.data.metrics["rows"] == 40
    assert [a.path for a in mirror_env["client"].list_artifacts(run.info.run_id, "scores")] == [f"scores/{first}.csv"]
    assert mlflow_mirror.sync(reg)["scoring_runs_logged"] == 0


def test_mlflow_down_never_fails_a_promotion_and_the_lag_is_caught_up(two_versions, mirror_env, tmp_path, caplog,
                                                                     monkeypatch):
    from tests.integrations.conftest import Server

    reg, first, second = two_versions
    own = Server(tmp_path / "own-mlflow").start()  # a server of this test's, to stop and start again
    env = {"MLFLOW_TRACKING_URI": own.uri, "TURKEY_MLFLOW_TIMEOUT_S": "20"}
    try:
        out = _cli("models", "--artifacts", reg.root, "sync-mlflow", env_extra=env)
        assert out.returncode == 0, out.stderr
        own.stop()
        out = _cli("models", "--artifacts", reg.root, "promote", second, "--user", "bob", env_extra=env)
        assert out.returncode == 0, out.stdout + out.stderr  # the promotion stands
        assert reg.champion_version() == second
        assert "mlflow: lagging" in out.stdout and "sync-mlflow` catches up" in out.stdout
        state = json.loads(Path(reg.display(mlflow_mirror.state_path(reg))).read_text())
        assert state["status"] == "lagging" and state["since"]

        own.start()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", own.uri)  # the catch-up keeps mirror_env's generous timeout
        with caplog.at_level("WARNING", logger="ml.mlflow_mirror"):
            caught = mlflow_mirror.catch_up(reg)
        assert caught["status"] == "synced" and caught["runs_logged"] == 0 and caught["model_versions_created"] == 0
        assert "caught up" in caplog.text
        from mlflow.tracking import MlflowClient

        client = MlflowClient(own.uri)
        assert _alias_version(client, mirror_env["model"]) == second
        assert len(client.search_model_versions(f"name='{mirror_env['model']}'")) == 2
        assert len(_experiment_runs(client, f"{mirror_env['experiment']}-training")) == 2
    finally:
        if own.proc is not None:
            own.stop()


def test_a_server_that_never_answers_costs_at_most_the_timeout(two_versions, mirror_env, monkeypatch):
    import socket

    reg, _, _ = two_versions
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent.getsockname()[1]}")
        out = mlflow_mirror.catch_up(reg, timeout_s=8)
    assert out["status"] == "lagging" and "did not finish within 8 s" in out["reason"]
