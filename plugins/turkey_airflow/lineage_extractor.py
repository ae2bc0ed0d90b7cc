"""The OpenLineage extractor of the pipeline's Python tasks: what :func:`turkey_airflow.lineage.record` was
told becomes the event's inputs and outputs (docs/mlflow.md). Imported only by Airflow's OpenLineage
provider, which names it in ``[openlineage] extractors``::

    AIRFLOW__OPENLINEAGE__EXTRACTORS=turkey_airflow.lineage_extractor.TaskLineageExtractor
"""

from __future__ import annotations

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import dataset_version_dataset

from turkey_airflow import lineage


def _facets(entry: dict) -> dict:
    facets = {}
    if entry.get("version"):
        facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=entry["version"])
    return facets


class TaskLineageExtractor(BaseExtractor):
    """Inputs and outputs of ``@task`` bodies, as they recorded them; a task that recorded nothing falls back
    to the provider's default (its declared inlets and outlets)."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        """The operators of ``@task`` and ``@task.branch``."""
        return ["_PythonDecoratedOperator", "_BranchPythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return None  # at start nothing is known yet

    def extract_on_complete(self, task_instance) -> OperatorLineage | None:
        """The recorded datasets of ``task_instance``, or None."""
        got = lineage.recorded(task_instance.dag_id, task_instance.task_id, task_instance.run_id)
        if got is None:
            return None
        return OperatorLineage(
            inputs=[InputDataset(e["namespace"], e["name"], facets=_facets(e)) for e in got["inputs"]],
            outputs=[OutputDataset(e["namespace"], e["name"], facets=_facets(e)) for e in got["outputs"]])
