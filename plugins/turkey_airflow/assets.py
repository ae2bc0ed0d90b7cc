"""The assets the pipeline produces and consumes, and what their events carry. Downstream DAGs schedule on
these names; :func:`champion_announcement` is the one place a champion's event ``extra`` is built (the
DAG's ``promote`` task and the console's rollback send the same)."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

#: Emitted by ``turkey_ingest`` when the labelled training data in the landing folder changed.
INCOMING_DATA = Asset(name="turkey_incoming_data", uri="turkey://landing/incoming", group="turkey")
#: Emitted by ``turkey_ingest`` when an unlabelled batch (or the Kaggle test file) has content not scored yet.
INCOMING_BATCHES = Asset(name="turkey_incoming_batches", uri="turkey://landing/batches", group="turkey")
#: One event per scored batch, from ``turkey_scoring``. extra: batch, version, rows, path, latest, skew.
SCORES = Asset(name="turkey_scores", uri="turkey://registry/scores", group="turkey")
#: The alias ``turkey_scoring`` emits :data:`SCORES` events through: one task, one event per batch, each
#: with its own ``extra`` (an outlet's own events share one ``extra``).
SCORES_BY_BATCH = AssetAlias(name="turkey_scores_by_batch", group="turkey")
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


def scores_announcement(record: dict, latest_path: str) -> dict:
    """The ``extra`` of the :data:`SCORES` event announcing one published scoring ``record``
    (:meth:`ml.scoring.store.ScoreStore.publish`)."""
    skew = record.get("skew") or {}
    return {"batch": record["batch"], "version": record["version"], "rows": record["rows"],
            "path": record["path"], "latest": latest_path, "input_sha256": record["input_sha256"],
            "skew_excess": skew.get("excess"), "skew_over_threshold": record.get("skew_over_threshold")}
