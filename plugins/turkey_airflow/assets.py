"""Assets the pipeline produces and consumes. Downstream DAGs schedule on these names."""

from __future__ import annotations

from airflow.sdk import Asset

#: Emitted by ``turkey_ingest`` when the content of the landing folder changed.
INCOMING_DATA = Asset(name="turkey_incoming_data", uri="turkey://landing/incoming", group="turkey")
#: Emitted by ``turkey_training`` when a new champion model is promoted. extra: version, metrics, path.
MODEL = Asset(name="turkey_champion_model", uri="turkey://registry/champion-model", group="turkey")
#: Emitted with MODEL: the champion's scored submission. extra: version, metrics, path (latest.csv).
SUBMISSION = Asset(name="turkey_submission", uri="turkey://registry/latest-submission", group="turkey")
