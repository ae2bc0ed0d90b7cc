"""What each task read and wrote, for OpenLineage (optional: the ``lineage`` extra, docs/mlflow.md).

A task body calls :func:`record` with its inputs and outputs -- the training and test files with their
sha256, the model version, the submission, each batch and its scores -- as :func:`dataset` entries.
The extractor (:mod:`turkey_airflow.lineage_extractor`, named in ``[openlineage] extractors``) hands them
to Airflow's OpenLineage provider when the task completes, so a lineage backend draws train data ->
model version -> submission and scores. Without the provider this costs one dict entry per task.
Nothing here imports OpenLineage.
"""

from __future__ import annotations

import urllib.parse

#: (dag_id, task_id, run_id) -> {"inputs": [...], "outputs": [...]}: filled by the task body, read by the
#: extractor in the same task process (the provider forks to emit, so the fork sees it too).
RECORDED: dict[tuple[str, str, str], dict] = {}


def dataset(location, version: str | None = None) -> dict:
    """A dataset named after the OpenLineage naming spec: a local path is namespace ``file``, name the
    absolute path; a URL ``scheme://host`` and its path. ``version`` (a sha256, our model version) becomes
    the dataset-version facet."""
    parsed = urllib.parse.urlparse(str(location))
    if parsed.scheme and parsed.scheme != "file" and "://" in str(location):
        namespace, name = f"{parsed.scheme}://{parsed.netloc}", parsed.path or "/"
    else:
        namespace, name = "file", parsed.path if parsed.scheme == "file" else str(location)
    return {"namespace": namespace, "name": name, "version": version}


def record(inputs=(), outputs=(), context=None) -> None:
    """Say what the running task read (``inputs``) and wrote (``outputs``): :func:`dataset` entries."""
    from airflow.sdk import get_current_context

    ti = (context or get_current_context()).get("ti")
    key = tuple(getattr(ti, a, None) for a in ("dag_id", "task_id", "run_id"))
    if None not in key:  # lineage never fails a task: a context without a task instance records nothing
        RECORDED[key] = {"inputs": list(inputs), "outputs": list(outputs)}


def recorded(dag_id: str, task_id: str, run_id: str) -> dict | None:
    """What :func:`record` was told for that task instance (None: nothing)."""
    return RECORDED.get((dag_id, task_id, run_id))


def model_dataset(registry, version: str) -> dict:
    """A registered model version as a dataset: its folder, versioned by our version name."""
    return dataset(registry.version_dir(version), version=version)
