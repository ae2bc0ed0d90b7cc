"""What the tasks tell OpenLineage (turkey_airflow.lineage): dataset names after the OpenLineage naming spec,
versions, and the record the extractor reads back. The events themselves: tests/integrations."""

import types

from turkey_airflow import lineage


def test_local_paths_and_urls_are_named_after_the_spec():
    assert lineage.dataset("/data/landing/train.json", version="abc") == {
        "namespace": "file", "name": "/data/landing/train.json", "version": "abc"}
    assert lineage.dataset("file:///data/x.csv")["name"] == "/data/x.csv"
    s3 = lineage.dataset("s3://bucket/registry/models/v1", version="v1")
    assert (s3["namespace"], s3["name"], s3["version"]) == ("s3://bucket", "/registry/models/v1", "v1")


def test_a_record_is_kept_per_task_instance(tmp_path):
    ti = types.SimpleNamespace(dag_id="d", task_id="t", run_id="r1")
    inputs, outputs = [lineage.dataset("/in.json", "sha")], [lineage.dataset("/out.csv", "v1")]
    lineage.record(inputs, outputs, context={"ti": ti})
    assert lineage.recorded("d", "t", "r1") == {"inputs": inputs, "outputs": outputs}
    assert lineage.recorded("d", "t", "r2") is None
