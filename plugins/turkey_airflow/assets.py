"""The assets the pipeline produces and consumes, and what their events carry. Downstream DAGs schedule on
these names; :func:`champion_announcement` is the one place a champion's event ``extra`` is built (the
DAG's ``promote`` task and the console's rollback send the same)."""

from __future__ import annotations

from airflow.sdk import Asset

#: Emitted by ``turkey_ingest`` when the content of the landing folder changed.
INCOMING_DATA = Asset(name="turkey_incoming_data", uri="turkey://landing/incoming", group="turkey")
#: Emitted when a new champion model is promoted (or rolled back to). extra: version, metrics, path.
MODEL = Asset(name="turkey_champion_model", uri="turkey://registry/champion-model", group="turkey")
#: Emitted with MODEL: the champion's scored submission. extra: version, metrics, path (latest.csv),
#: versioned_path.
SUBMISSION = Asset(name="turkey_submission", uri="turkey://registry/latest-submission", group="turkey")


def champion_announcement(registry, version: str) -> dict[Asset, dict]:
    """The ``extra`` of the :data:`MODEL` and :data:`SUBMISSION` events announcing ``version`` as champion:
    its version, metric summary (:func:`ml.manifest.metric_summary`) and where to read it."""
    from ml.manifest import metric_summary
    from ml.registry.views import describe

    info = describe(registry, version, champion=version)
    metrics = metric_summary(info["metrics"])
    return {
        MODEL: {"version": version, "metrics": metrics, "path": info["model"]},
        SUBMISSION: {"version": version, "metrics": metrics, "path": registry.submission_path(),
                     "versioned_path": registry.submission_path(version)},
    }
