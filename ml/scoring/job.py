"""The scoring job: every batch the champion has not scored, scored by the champion as it is (loaded once,
never retrained), published only while it still is the champion.

One :func:`score_batches` call is one scoring run (the ``turkey_scoring`` DAG's task, or ``turkey scores``):

1. the champion: none yet means every batch waits (the run says so and scores nothing); a damaged pointer
   fails with the repair command (:class:`~ml.errors.RegistryDamaged`), never "no champion";
2. the batches (:func:`discover`): one JSON file per batch in the batch folder, the file stem its id, newest
   first, and the Kaggle test file as batch ``kaggle-test``;
3. the plan (:func:`plan`): a batch whose current content has no published scores is scored; one whose
   published scores come from an earlier champion is re-scored when it is in the window (the newest
   ``rescore_window`` batches, and the Kaggle test file); anything else keeps its scores;
4. per batch: the test-file rules (a malformed batch is quarantined to ``rejected/`` with its report and the
   run goes on), scores and the training-serving skew (:mod:`ml.scoring.skew`), kept as
   ``scores/<batch>/<version>.*`` and published under the registry lock (:class:`ScoreStore`);
5. what this run published and has not announced: the asset events to send (:meth:`ScoreStore.to_announce`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml.errors import DataError, RegistryError, TurkeyError
from ml.registry import now_iso, sha256_file
from ml.scoring.store import TEST_BATCH, ScoreStore, require_batch_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One unlabelled input: its id, file and the file's sha256."""

    id: str
    path: Path
    sha256: str


def discover(batch_dir: Path, test_file: Path | None) -> tuple[list[Batch], list[dict]]:
    """``(batches, refused)``: the batch files in ``batch_dir``, newest first, then the Kaggle test file;
    ``refused``: files whose name cannot be a batch id (with the reason)."""
    found, refused = [], []
    files = sorted(Path(batch_dir).glob("*.json"), key=lambda p: (-p.stat().st_mtime, p.name)) if \
        Path(batch_dir).is_dir() else []
    for path in files:
        try:
            found.append(Batch(require_batch_id(path.stem), path, sha256_file(path)))
        except RegistryError as exc:
            refused.append({"batch": path.stem, "file": str(path), "rule": "batch.id", "reason": str(exc)})
    if test_file is not None and Path(test_file).is_file():
        found.append(Batch(TEST_BATCH, Path(test_file), sha256_file(test_file)))
    return found, refused


def plan(store: ScoreStore, batches: list[Batch], champion: str, config) -> list[tuple[Batch, str]]:
    """The batches this run scores, each with why: ``new`` (its content has no published scores),
    ``new champion`` (in the window, scored by an earlier champion) or ``forced``."""
    landed = [b for b in batches if b.id != TEST_BATCH]
    window = {b.id for b in landed[: config.rescore_window]} | {TEST_BATCH}
    todo = []
    for b in batches:
        if config.batches is not None and b.id not in config.batches:
            continue
        latest = store.latest(b.id)
        if latest is None or latest["input_sha256"] != b.sha256:
            todo.append((b, "new"))
        elif latest["version"] != champion and b.id in window:
            todo.append((b, "new champion"))
        elif config.force_rescore:
            todo.append((b, "forced"))
    return todo


def champion_profile(registry, version: str) -> dict | None:
    """The training profile of ``version`` (None for versions registered before profiles)."""
    from ml.scoring.skew import PROFILE_FILE

    path = registry.version_path(version, PROFILE_FILE)
    return registry.storage.read_json(path) if registry.storage.isfile(path) else None


def score_one(model, store: ScoreStore, batch: Batch, version: str, profile, config, run_id, report_dir) -> dict:
    """Validate, score and keep one batch; publish it unless its skew is refused. Returns what happened:
    ``{"batch", "status": published|refused|not_champion|quarantined, ...}``."""
    from ml.scoring.predict import validated_records, write_scores
    from ml.scoring.skew import describe, skew

    try:
        records = validated_records(batch.path, report_dir / batch.id if report_dir else None)
    except DataError as exc:
        return {"batch": batch.id, "status": "quarantined", "reason": str(exc),
                "moved_to": _quarantine(batch, report_dir)}
    with tempfile.TemporaryDirectory(prefix="turkey-scores-") as tmp:
        csv_path = Path(tmp) / "scores.csv"
        _, features = write_scores(model, records, csv_path)
        figure = skew(profile, features)
        over = "excess" in figure and figure["excess"] > config.max_skew
        refused = over and config.on_skew == "refuse"
        record = store.keep(batch.id, version, csv_path, {
            "rows": len(records), "input_sha256": records.sha256, "input_file": str(batch.path),
            "scored_at": now_iso(), "skew": figure, "skew_over_threshold": over, "max_skew": config.max_skew,
            "run_id": run_id, "published": not refused})
    (log.warning if over else log.info)("batch %s (%d records) scored by %s; %s", batch.id, len(records), version,
                                        describe(figure))
    if refused:
        return {"batch": batch.id, "status": "refused", "reason": f"{describe(figure)} > max_skew {config.max_skew}",
                "record": record}
    if not store.publish(record, run_id):
        return {"batch": batch.id, "status": "not_champion", "record": record}
    return {"batch": batch.id, "status": "published", "record": record}


def _quarantine(batch: Batch, report_dir) -> str | None:
    """Move a malformed landed batch to ``rejected/`` (the Kaggle test file stays: training reads it too)."""
    from ml.validation import reject_file

    if batch.id == TEST_BATCH:
        return None
    try:
        return reject_file(batch.path, report_dir / batch.id if report_dir else None)
    except TurkeyError as exc:  # e.g. a read-only landing folder: the file stays, the reason is reported
        log.error("could not quarantine %s: %s", batch.path, exc)
        return None


def score_batches(registry, config, batch_dir: Path, test_file: Path | None, run_id: str, work_dir: Path,
                  report_dir: Path | None = None) -> dict:
    """One scoring run (see the module docstring). Returns its report: the champion (or why it waits),
    each batch's outcome, and ``announce``: the published records to send asset events for."""
    from ml.scoring.predict import load_model

    store = ScoreStore(registry)
    batches, refused_ids = discover(batch_dir, test_file)
    champion = registry.champion_version()  # RegistryDamaged: fail with the repair command
    report = {"champion": champion, "batches": [{"batch": r["batch"], "status": "quarantined", **r}
                                                for r in refused_ids]}
    if champion is None:
        return {**report, "waiting": f"no champion yet: {len(batches)} batch(es) wait for the first promotion"}
    todo = plan(store, batches, champion, config)
    log.info("champion %s; %d of %d batch(es) to score: %s", champion, len(todo), len(batches),
             ", ".join(f"{b.id} ({why})" for b, why in todo) or "none")
    if todo:
        model = load_model(registry.fetch_model(champion, work_dir))  # once per run
        profile = champion_profile(registry, champion)
        for batch, why in todo:
            outcome = score_one(model, store, batch, champion, profile, config, run_id, report_dir)
            report["batches"].append({**outcome, "why": why})
    report["announce"] = store.to_announce(run_id)
    return report


def read_scores(path) -> dict[str, float]:
    """``{vid_id: probability}`` of a scores CSV."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        return {row["vid_id"]: float(row["is_turkey"]) for row in csv.DictReader(fh)}


def backfill(registry, batch_id: str, path: Path, version: str, work_dir: Path) -> dict:
    """Score one batch file with any registry ``version`` (a what-if), kept in the same layout as
    ``scores/<batch>/<version>.*`` and published only if ``version`` is the champion. Returns the record
    and ``flips``: the records whose predicted class (at 0.5) differs from the champion's scores of the
    same content (the champion scores it too when it has not)."""
    from ml.scoring.predict import load_model, validated_records, write_scores

    store = ScoreStore(registry)
    version, champion = registry.resolve(version), registry.champion_version()
    records = validated_records(path)
    scored = {}
    for v in dict.fromkeys([version, champion] if champion else [version]):
        kept = store.history(batch_id)
        same = [r for r in kept if r["version"] == v and r["input_sha256"] == records.sha256]
        if v == champion and v != version and same:  # the champion's scores of this content exist already
            scored[v] = read_scores(registry.display(store.path(batch_id, f"{v}.csv")))
            continue
        model = load_model(registry.fetch_model(v, work_dir))
        csv_path = Path(work_dir) / f"{v}.csv"
        write_scores(model, records, csv_path)
        record = store.keep(batch_id, v, csv_path, {"rows": len(records), "input_sha256": records.sha256,
                                                    "input_file": str(path), "scored_at": now_iso(),
                                                    "skew": {}, "run_id": "backfill", "published": v == champion})
        if v == champion:
            store.publish(record, run_id=None)
        scored[v] = read_scores(csv_path)
    flips = []
    if champion and champion != version:
        flips = [vid for vid, p in scored[version].items() if (p >= 0.5) != (scored[champion][vid] >= 0.5)]
    return {"batch": batch_id, "version": version, "champion": champion, "rows": len(records),
            "path": registry.display(store.path(batch_id, f"{version}.csv")), "flips": flips}
