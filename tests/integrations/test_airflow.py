"""Through Airflow (``airflow dags test``), with the tracking server given as the Airflow connection
``turkey_mlflow`` and OpenLineage's file transport: a training run's ``mirror_to_mlflow`` logs the run
(tagged with the DAG run), the alias follows the promotion, and the emitted events draw train data (sha256)
-> model version -> submission; a scoring run then draws batch (sha256) + model -> scores, and mirrors its
scoring run."""

from __future__ import annotations

import json

import pytest

from ml.demo import generate, generate_batch
from ml.registry import Registry, sha256_file
from tests.support.airflow_harness import Env

#: Tiny data, few epochs (as tests/e2e).
FAST = {"epochs": 6, "min_val_accuracy": 0.5, "min_records": 50, "seed": 3, "min_gate_records": 30}


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _complete(events, job: str) -> dict:
    found = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == job]
    assert found, sorted({e["job"]["name"] for e in events})
    return found[-1]


def _datasets(event, side: str) -> dict:
    return {(d["namespace"], d["name"]): (d.get("facets") or {}).get("version", {}).get("datasetVersion")
            for d in event[side]}


@pytest.fixture
def lineage_env(tmp_path, server, mirror_env):
    env = Env(tmp_path / "env")
    events = tmp_path / "openlineage.jsonl"
    env.env.pop("MLFLOW_TRACKING_URI", None)  # the connection says where MLflow is
    env.env.update({
        "AIRFLOW_CONN_TURKEY_MLFLOW": server.uri,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "turkey_airflow.lineage_extractor.TaskLineageExtractor",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "turkey-test",
    })
    generate(env.data / "landing", train_size=400, test_size=80, seed=11)
    env.airflow("dags", "reserialize")
    return env, events


def test_training_and_scoring_runs_are_mirrored_and_their_lineage_emitted(lineage_env, mirror_env):
    env, events_file = lineage_env
    client = mirror_env["client"]
    res = env.trigger(FAST)
    assert res["state"] == "success" and res["tasks"]["mirror_to_mlflow"] == "success", res["log"][-4000:]
    reg = Registry(env.artifacts)
    version = reg.champion_version()

    [run] = client.search_runs([client.get_experiment_by_name(f"{mirror_env['experiment']}-training").experiment_id])
    assert (run.data.tags["turkey.version"], run.data.tags["dag_id"], run.data.tags["run_id"]) == (
        version, "turkey_training", res["run_id"])
    alias = client.get_model_version_by_alias(mirror_env["model"], "champion")
    assert alias.tags["turkey.version"] == version and alias.run_id == run.info.run_id

    events = _events(events_file)
    train, test = env.data / "landing" / "train.json", env.data / "landing" / "test.json"
    register = _complete(events, "turkey_training.register")
    assert _datasets(register, "inputs") == {("file", str(train)): sha256_file(train),
                                             ("file", str(test)): sha256_file(test)}
    model = ("file", reg.version_dir(version))
    assert _datasets(register, "outputs") == {model: version}
    promote = _complete(events, "turkey_training.promote")
    assert _datasets(promote, "inputs") == {model: version}
    assert _datasets(promote, "outputs") == {("file", reg.submission_path()): version}
    assert register["job"]["namespace"] == "turkey-test"

    batch = env.data / "landing" / "batches" / "week-51.json"
    generate_batch(batch, 60, seed=4)
    scored = env.trigger(dag_id="turkey_scoring")
    assert scored["state"] == "success", scored["log"][-4000:]
    scoring = _complete(_events(events_file), "turkey_scoring.score_batches")
    inputs, outputs = _datasets(scoring, "inputs"), _datasets(scoring, "outputs")
    assert inputs[model] == version and inputs[("file", str(batch))] == sha256_file(batch)
    assert outputs[("file", f"{reg.root}/scores/week-51/latest.csv")] == version
    scoring_exp = client.get_experiment_by_name(f"{mirror_env['experiment']}-scoring")
    batches = {r.data.tags["turkey.batch"] for r in client.search_runs([scoring_exp.experiment_id])}
    assert "week-51" in batches
