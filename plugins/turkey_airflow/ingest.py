"""The ingest checks: hash what landed; emit an asset event only for content that is new.

- :func:`check_landing`: new labelled training data (``train.json``) -> ``turkey_incoming_data`` (training).
  New means no successful training run has trained on exactly this file (``make run`` and DAG runs record
  what they trained on, see :mod:`ml.ingest_state`) and it was not announced before.
- :func:`check_batches`: an unlabelled batch in ``landing/batches/`` (or the Kaggle test file) whose content
  has no published scores and was not announced before -> ``turkey_incoming_batches`` (scoring). A changed
  ``test.json`` is scored, never trained on.
"""

from __future__ import annotations

import logging

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from turkey_airflow.assets import INCOMING_BATCHES, INCOMING_DATA
from turkey_airflow.runtime import setup_task_process

log = logging.getLogger(__name__)


def check_landing() -> dict:
    """Announce the landing folder's ``train.json`` (an ``INCOMING_DATA`` event with its digest) when no
    training run trained on it and it was not announced before; otherwise skip, saying why."""
    setup_task_process()
    from ml import ingest_state
    from ml.registry import sha256_file
    from ml.settings import landing_dir

    landing = landing_dir()
    train = landing / "train.json"
    if not train.is_file():
        raise AirflowSkipException(f"waiting for input: {train} not there yet")
    digests = {"train.json": sha256_file(train)}
    state = ingest_state.load()
    trained = ingest_state.trained_on(digests, state)
    if trained:
        raise AirflowSkipException(
            f"landing data already trained on by run {trained.get('run_id')} (version {trained.get('version')})"
        )
    if (state.get("digests") or {}).get("train.json") == digests["train.json"]:
        raise AirflowSkipException("landing folder unchanged since the last announced event")
    get_current_context()["outlet_events"][INCOMING_DATA].extra = {"digests": digests, "landing": str(landing)}
    ingest_state.record_announced(digests)
    log.info("new training data in %s: %s", landing, digests)
    return digests


def check_batches() -> dict:
    """Announce the batches (and the Kaggle test file) whose content has no published scores and was not
    announced before (one ``INCOMING_BATCHES`` event naming them); otherwise skip, saying why."""
    setup_task_process()
    from ml import ingest_state
    from ml.config import ScoringConfig
    from ml.registry import Registry
    from ml.scoring.job import discover
    from ml.scoring.store import ScoreStore
    from ml.settings import resolve_input

    cfg = ScoringConfig()
    batches, _ = discover(resolve_input(cfg.batch_dir), resolve_input(cfg.test_file))
    store, announced = ScoreStore(Registry()), ingest_state.load().get("batches", {})
    new = {b.id: b.sha256 for b in batches
           if (store.latest(b.id) or {}).get("input_sha256") != b.sha256 and announced.get(b.id) != b.sha256}
    if not new:
        raise AirflowSkipException(f"no unscored batch: {len(batches)} batch(es), all scored or already announced")
    get_current_context()["outlet_events"][INCOMING_BATCHES].extra = {"batches": new}
    ingest_state.record_batches_announced(new)
    log.info("new batches to score: %s", ", ".join(sorted(new)))
    return new
