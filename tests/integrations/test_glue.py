"""The Airflow glue of the integrations, in-process: the extractor turning what a task recorded into
OpenLineage datasets, and where the mirror finds the tracking server (environment, else the
``turkey_mlflow`` connection)."""

from __future__ import annotations

import types

from turkey_airflow import lineage, mirror


def test_the_extractor_hands_the_recorded_datasets_to_openlineage():
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    from turkey_airflow.lineage_extractor import TaskLineageExtractor

    ti = types.SimpleNamespace(dag_id="turkey_training", task_id="register", run_id="run-1")
    lineage.record([lineage.dataset("/data/train.json", "sha-1")], [lineage.dataset("s3://bucket/models/v1", "v1")],
                   context={"ti": ti})
    extractor = TaskLineageExtractor(types.SimpleNamespace(task_id="register", task_type="_PythonDecoratedOperator"))
    assert "_PythonDecoratedOperator" in extractor.get_operator_classnames()
    assert extractor.extract() is None  # nothing is known when the task starts
    got = extractor.extract_on_complete(ti)
    [src], [dst] = got.inputs, got.outputs
    assert isinstance(src, InputDataset) and (src.namespace, src.name) == ("file", "/data/train.json")
    assert src.facets["version"].datasetVersion == "sha-1"
    assert isinstance(dst, OutputDataset) and (dst.namespace, dst.name) == ("s3://bucket", "/models/v1")
    other = types.SimpleNamespace(dag_id="turkey_training", task_id="train", run_id="run-1")
    assert extractor.extract_on_complete(other) is None  # recorded nothing: the provider's default applies


def test_the_tracking_server_comes_from_the_environment_else_the_connection(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_TURKEY_MLFLOW", raising=False)
    assert mirror.mlflow_environment() is None  # off: no variable, no connection
    monkeypatch.setenv("AIRFLOW_CONN_TURKEY_MLFLOW", "http://ml:secret@mlflow.internal:5001/https")
    assert mirror.mlflow_environment() == "https://mlflow.internal:5001"
    import os

    assert os.environ["MLFLOW_TRACKING_URI"] == "https://mlflow.internal:5001"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == ("ml", "secret")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # the variable wins
    assert mirror.mlflow_environment() == "http://127.0.0.1:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("AIRFLOW_CONN_TURKEY_MLFLOW", '{"conn_type": "http", "extra": {"tracking_uri": "databricks"}}')
    assert mirror.mlflow_environment() == "databricks"
