"""What inputs have been announced and trained on: ``<artifacts>/state/ingest.json``.

Written by the ingest checks (``turkey_ingest``: the training-data digests and the batch digests they last
announced) and by every training run that registers a model (DAG run or ``make run``: the digest of the
labelled data it trained on). The training check announces landing data only if no successful training run
has trained on exactly that ``train.json`` yet and it has not announced it before, so ``make run``
followed by unpausing the DAGs does not retrain the same data again; a changed ``test.json`` is scored, not
trained on. Digests are sha256 of the files' bytes, keyed by file name.

Read-modify-write happens under an exclusive ``flock`` on ``ingest.lock`` (ingest and training may
finish at the same moment); the file itself is replaced atomically.
"""

from __future__ import annotations

import fcntl
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from ml.fsutil import write_json

log = logging.getLogger(__name__)

#: How many trained-input entries to keep (oldest dropped first).
MAX_TRAINED_ENTRIES = 100


def state_path() -> Path:
    """``<artifacts root>/state/ingest.json``."""
    from ml.settings import settings

    return settings().artifacts_root / "state" / "ingest.json"


def load(path=None) -> dict:
    """The state: ``{"digests": last announced, "trained": [{"digests", "run_id", "version", "at"}...]}``."""
    path = Path(path or state_path())
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def trained_on(digests: dict, state: dict) -> dict | None:
    """The latest entry of a training run that trained on exactly this ``train.json`` (``digests``' entry for
    it), if any."""
    for entry in reversed(state.get("trained", [])):
        if (entry.get("digests") or {}).get("train.json") == digests.get("train.json"):
            return entry
    return None


def record_batches_announced(digests: dict, path=None) -> dict:
    """Remember the batch digests (``{batch id: sha256}``) the batch check just announced."""
    path = Path(path or state_path())
    with _locked(path):
        state = load(path)
        state["batches"] = {**state.get("batches", {}), **digests}
        write_json(state, path)
    return state


def record_trained(digests: dict, path=None, **info) -> dict:
    """Remember that a successful run trained on ``digests`` (``info``: run_id, version, at)."""
    path = Path(path or state_path())
    with _locked(path):
        state = load(path)
        trained = [e for e in state.get("trained", []) if (e.get("digests") or {}).get("train.json")
                   != digests.get("train.json")]
        trained.append({"digests": dict(digests), **info})
        state["trained"] = trained[-MAX_TRAINED_ENTRIES:]
        write_json(state, path)
    return state


def record_announced(digests: dict, path=None) -> dict:
    """Remember the digests the ingest check just announced."""
    path = Path(path or state_path())
    with _locked(path):
        state = load(path)
        state["digests"] = dict(digests)
        write_json(state, path)
    return state
