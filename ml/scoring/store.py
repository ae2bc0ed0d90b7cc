"""Where scores live in the registry, and publishing them as one guarded step.

Layout under the registry root, one folder per batch (docs/scoring.md)::

    scores/<batch>/<version>.csv    vid_id,is_turkey of the batch by that version (written whole, kept)
    scores/<batch>/<version>.json   what that scoring was: rows, input sha256, scored_at, skew, run, published
    scores/<batch>/latest.csv       the published scores (a copy of one <version>.csv)
    scores/<batch>/latest.json      the published record: the above plus path, and whether it was announced

:meth:`ScoreStore.publish` is the transaction: under the registry lock (the one promotions take), it
re-reads the champion and publishes only if the scoring version still is the champion (compare-and-set),
then writes ``latest.csv`` and last ``latest.json`` (each whole or not at all); for the Kaggle test file
also ``submissions/latest.csv``. So downstream never reads scores from a model that was not champion when
they were published, and a crash leaves the previous published scores in place. Publishing what is
already published (same version, same input) changes nothing, so a retried or cleared run scores nothing
twice.
"""

from __future__ import annotations

import logging
import posixpath

from ml.errors import RegistryError
from ml.fsutil import write_json
from ml.registry.storage import json_bytes
from ml.settings import safe_name

log = logging.getLogger(__name__)

#: The batch id of the Kaggle test file; a landed batch may not take it.
TEST_BATCH = "kaggle-test"


class ScoreStore:
    """The ``scores/`` folder of a :class:`ml.registry.Registry`."""

    def __init__(self, registry):
        self.registry, self.storage = registry, registry.storage

    def path(self, batch: str, name: str | None = None) -> str:
        """The fs path of a batch's folder, or of the file ``name`` in it."""
        parts = ("scores", safe_name(batch)) + ((name,) if name else ())
        return self.storage.path(*parts)

    def batches(self) -> list[str]:
        """Every batch that has been scored, sorted."""
        return sorted(n for n in self.storage.names(self.storage.path("scores")) if not n.startswith("."))

    def latest(self, batch: str) -> dict | None:
        """The published record of ``batch`` (None when nothing is published)."""
        path = self.path(batch, "latest.json")
        return self.storage.read_json(path) if self.storage.isfile(path) else None

    def history(self, batch: str) -> list[dict]:
        """Every scoring of ``batch`` (published or not), oldest first."""
        names = [n for n in self.storage.names(self.path(batch)) if n.endswith(".json") and n != "latest.json"
                 and not n.startswith(".")]
        return sorted((self.storage.read_json(self.path(batch, n)) for n in names), key=lambda r: r["scored_at"])

    def is_current(self, batch: str, version: str, input_sha256: str) -> bool:
        """Whether ``version``'s scores of exactly this input are what is published."""
        latest = self.latest(batch)
        return bool(latest) and latest["version"] == version and latest["input_sha256"] == input_sha256

    def keep(self, batch: str, version: str, scores_csv, record: dict) -> dict:
        """Store one scoring: ``scores_csv`` (a local CSV) as ``<version>.csv`` and ``record`` as
        ``<version>.json``; returns the record with its ``path``."""
        csv_path = self.path(batch, f"{safe_name(version)}.csv")
        self.storage.put_file(scores_csv, csv_path)
        record = {**record, "batch": batch, "version": version, "path": self.registry.display(csv_path)}
        self.storage.write_bytes(self.path(batch, f"{safe_name(version)}.json"), json_bytes(record))
        return record

    def publish(self, record: dict, run_id: str | None) -> bool:
        """Publish a kept scoring (``record`` from :meth:`keep`) if its version is still the champion.
        Returns False, changing nothing, when the champion changed meanwhile; True when published (or
        already published)."""
        batch, version = record["batch"], record["version"]
        with self.registry.locked():
            champion = self.registry.champion_version()
            if champion != version:
                log.warning("scores of %s by %s not published: the champion is now %s", batch, version, champion)
                return False
            if self.is_current(batch, version, record["input_sha256"]):
                return True
            src = self.path(batch, f"{safe_name(version)}.csv")
            self.storage.copy(src, self.path(batch, "latest.csv"))
            if batch == TEST_BATCH:
                self.storage.copy(src, self.registry.submission_file())
            latest = {**record, "published": True, "published_at": record["scored_at"], "run_id": run_id,
                      "announced": False}
            self.storage.write_bytes(self.path(batch, "latest.json"), json_bytes(latest))
        return True

    def to_announce(self, run_id: str) -> list[dict]:
        """The published records this run published and has not announced yet (a retried run announces what
        its failed try published; a cleared run nothing twice)."""
        out = []
        for batch in self.batches():
            latest = self.latest(batch)
            if latest and latest.get("run_id") == run_id and not latest.get("announced"):
                out.append(latest)
        return out

    def mark_announced(self, records: list[dict]) -> None:
        """Record that ``records`` are announced (call when their asset events are set)."""
        with self.registry.locked():
            for record in records:
                latest = self.latest(record["batch"])
                if latest and latest["version"] == record["version"] and latest["run_id"] == record["run_id"]:
                    self.storage.write_bytes(self.path(record["batch"], "latest.json"),
                                             json_bytes({**latest, "announced": True}))


def champion_submission_ok(registry, version: str, latest_sha256: str) -> bool:
    """Whether ``submissions/latest.csv`` (its sha256) is ``version``'s: its own submission from training, or
    its scores of the current Kaggle test file (:meth:`ScoreStore.publish`)."""
    store = ScoreStore(registry)
    candidates = [registry.version_path(version, "submission.csv"),
                  store.path(TEST_BATCH, f"{safe_name(version)}.csv")]
    return any(registry.storage.isfile(p) and registry.storage.sha256(p) == latest_sha256 for p in candidates)


def write_report(path, report: dict) -> str:
    """A scoring run's report (JSON) on the artifacts root."""
    return write_json(report, path)


def require_batch_id(batch: str) -> str:
    """``batch`` if it can name a batch folder, else a RegistryError (the test file's id is reserved)."""
    if batch == TEST_BATCH:
        raise RegistryError(f"batch id {batch!r} is reserved for the Kaggle test file; rename the batch file")
    if safe_name(batch) != batch or posixpath.basename(batch) != batch:
        raise RegistryError(f"batch id {batch!r} must be letters, digits and -_. only; rename the batch file")
    return batch
