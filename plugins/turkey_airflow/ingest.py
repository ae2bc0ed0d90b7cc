"""The ingest check: hash the landing folder's inputs; emit an asset event only on change."""

from __future__ import annotations

import json
import logging
import os

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from turkey_airflow.assets import INCOMING_DATA

log = logging.getLogger("ml")


def check_landing() -> dict:
    from ml.config import artifacts_root, landing_dir
    from ml.registry import sha256_file

    landing = landing_dir()
    files = {name: landing / name for name in ("train.json", "test.json")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise AirflowSkipException(f"waiting for input: {', '.join(missing)} not there yet")
    digests = {name: sha256_file(p) for name, p in files.items()}
    state = artifacts_root() / "state" / "ingest.json"
    previous = json.loads(state.read_text()) if state.is_file() else {}
    if previous.get("digests") == digests:
        raise AirflowSkipException("landing folder unchanged since the last announced event")
    get_current_context()["outlet_events"][INCOMING_DATA].extra = {"digests": digests, "landing": str(landing)}
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_name(f".ingest.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"digests": digests}, indent=2))
    os.replace(tmp, state)
    log.info("new input data in %s: %s", landing, digests)
    return digests
