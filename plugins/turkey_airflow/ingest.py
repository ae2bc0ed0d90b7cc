"""The ingest check: hash the landing folder's inputs; emit an asset event only for data that is new.

New means: no successful training run has trained on exactly these inputs (``make run`` and DAG runs
record what they trained on, see :mod:`ml.ingest_state`) and they were not announced before.
"""

from __future__ import annotations

import logging

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from turkey_airflow.assets import INCOMING_DATA
from turkey_airflow.runtime import setup_task_process

log = logging.getLogger(__name__)


def check_landing() -> dict:
    """Announce the landing folder's inputs (an ``INCOMING_DATA`` event with their digests) when no
    training run trained on them and they were not announced before; otherwise skip, saying why."""
    setup_task_process()
    from ml import ingest_state
    from ml.registry import sha256_file
    from ml.settings import landing_dir

    landing = landing_dir()
    files = {name: landing / name for name in ("train.json", "test.json")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise AirflowSkipException(f"waiting for input: {', '.join(missing)} not there yet")
    digests = {name: sha256_file(p) for name, p in files.items()}
    state = ingest_state.load()
    trained = ingest_state.trained_on(digests, state)
    if trained:
        raise AirflowSkipException(
            f"landing data already trained on by run {trained.get('run_id')} (version {trained.get('version')})"
        )
    if state.get("digests") == digests:
        raise AirflowSkipException("landing folder unchanged since the last announced event")
    get_current_context()["outlet_events"][INCOMING_DATA].extra = {"digests": digests, "landing": str(landing)}
    ingest_state.record_announced(digests)
    log.info("new input data in %s: %s", landing, digests)
    return digests
