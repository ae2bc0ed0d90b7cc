"""Validate a train/test JSON file against the data rules; write Data Docs; quarantine rejected files.

Parsing (:func:`ml.data.read_records`) checks the structure and measures every record; the record and
file rules then run as Great Expectations suites (``ml/expectations/``) on a scalar one-row-per-record
table, so they are vectorised and cost well under a second even at 100x Kaggle size. Cross-file checks
(train vs test) are plain numpy. A rule either *fails* the file or only *warns*.

======================  ========  ==================================================================================
Rule                    Kind      Meaning
======================  ========  ==================================================================================
file.readable           failure   the file exists and can be opened and read
file.utf8               failure   the file is UTF-8 text
file.non_empty          failure   the file is not empty or blank
json.syntax             failure   the file is JSON (no garbage, trailing commas, over-deep nesting, over-long numbers)
json.complete           failure   the JSON is not truncated
json.finite             failure   no NaN / Infinity literals
json.list               failure   the top-level value is a list of records
record.object           failure   every element of the list is a JSON object
fields.required         failure   every record has vid_id, start/end_time_seconds_youtube_clip, audio_embedding
vid_id.valid            failure   vid_id is a non-empty (UTF-8) string
vid_id.unique           failure   no vid_id occurs twice in the file
time.numeric            failure   start and end times are finite numbers (not strings, booleans or nulls)
time.order              failure   end time > start time
time.duration           failure   end - start <= 10 s
embedding.list          failure   audio_embedding is a list
embedding.frames        failure   audio_embedding has 1 to 10 frames (short clips are valid)
embedding.row_length    failure   every frame is a list of exactly 128 values
embedding.value_type    failure   every value is an integer (no floats, strings, booleans or nulls)
embedding.value_range   failure   every value is in 0..255
label.required          failure   (train) every record has is_turkey
label.valid             failure   (train) is_turkey is the integer 0 or 1
label.both_classes      failure   (train) both classes occur
label.balance           failure   (train) each class is >= 5% of the labelled records
records.min_count       failure   (train) the file has at least ``min_records`` records (default 100)
fields.extra            warning   a record has unknown fields (accepted and ignored)
label.absent            warning   (test) a record has is_turkey (accepted and ignored)
overlap.vid_id          warning   (test, given the train outcome) a vid_id occurs in both train and test
drift.frame_mean        warning   (test, given the train outcome) |mean(test frame_mean) - mean(train frame_mean)|
                                  exceeds 0.5 x sd(train frame_mean); frame_mean is a record's mean value
======================  ========  ==================================================================================

A record that breaks one rule is not also reported by the rules that depend on it (a record without
``audio_embedding`` breaks ``fields.required`` only). Every failure lists *all* offending records as
``(index, vid_id)`` (vid_id None where the record has no usable one); messages show the first 10.

Reports (``validate_file(..., report_dir=DIR)``, also written when the file fails): ``DIR/validation-<split>.json``
(verdict, failures with up to 100 records each, warnings) and a static GX Data Docs site
``DIR/data-docs-<split>/`` (the suite and this run's results; each expectation is labelled with its rule);
``report_html`` is this run's result page in it, which renders offline too. Train and test may share ``DIR``. ``reject_file`` moves a bad file to ``rejected/`` beside its folder.

The GX context (ephemeral, offline, no analytics, no progress bars) is created once per process and
reused: its start-up costs seconds, a validation run costs a fraction of one. Results are not kept in
the context's store (serialising a COMPLETE result at 120k records costs seconds).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ml.data import N_FEATURES, Records, read_records
from ml.errors import DataError
from ml.fsutil import write_json

SPLITS = ("train", "test")
DEFAULT_MIN_RECORDS = 100
DRIFT_THRESHOLD = 0.5  # in units of train's sd of frame_mean
SHOW_RECORDS = 10  # records named in a message
JSON_RECORDS = 100  # records listed per rule in the JSON summary

# Rule name -> (kind, one-line description); order = report order. Mirrors the docstring table.
RULES: dict[str, tuple[str, str]] = {
    "file.readable": ("failure", "the file exists and can be opened and read"),
    "file.utf8": ("failure", "the file is UTF-8 text"),
    "file.non_empty": ("failure", "the file is not empty or blank"),
    "json.syntax": ("failure", "the file is valid JSON"),
    "json.complete": ("failure", "the JSON is not truncated"),
    "json.finite": ("failure", "no NaN / Infinity literals"),
    "json.list": ("failure", "the top-level value is a list of records"),
    "record.object": ("failure", "every element of the list is a JSON object"),
    "fields.required": (
        "failure",
        "every record has vid_id, start_time_seconds_youtube_clip, end_time_seconds_youtube_clip and audio_embedding",
    ),
    "vid_id.valid": ("failure", "vid_id must be a non-empty string"),
    "vid_id.unique": ("failure", "vid_id must be unique in the file"),
    "time.numeric": ("failure", "start and end times must be finite numbers"),
    "time.order": ("failure", "the end time must be greater than the start time"),
    "time.duration": ("failure", "a clip must last at most 10 s"),
    "embedding.list": ("failure", "audio_embedding must be a list of frames"),
    "embedding.frames": ("failure", "audio_embedding must have 1 to 10 frames"),
    "embedding.row_length": ("failure", "every frame must be a list of exactly 128 values"),
    "embedding.value_type": ("failure", "every value must be an integer (no floats, strings, booleans or nulls)"),
    "embedding.value_range": ("failure", "every value must be in 0..255"),
    "label.required": ("failure", "every train record must have is_turkey"),
    "label.valid": ("failure", "is_turkey must be the integer 0 or 1"),
    "label.both_classes": ("failure", "the train file must contain both classes"),
    "label.balance": ("failure", "each class must be at least 5% of the labelled records"),
    "records.min_count": ("failure", "(train) the file must hold at least min_records records"),
    "fields.extra": ("warning", "unknown fields are ignored"),
    "label.absent": ("warning", "is_turkey in a test file is ignored"),
    "overlap.vid_id": ("warning", "vid_ids occur in both train and test"),
    "drift.frame_mean": ("warning", "test frame statistics differ from train's"),
}


@dataclass
class Failure:
    rule: str
    message: str
    records: list[tuple[int, str]] = field(default_factory=list)  # (record index, vid_id): ALL offending


@dataclass
class ValidationOutcome:
    path: str
    split: str
    records: Records | None
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report_json: str | None = None
    report_html: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_for_failures(self) -> None:
        """Raise :class:`DataError` for the first failure (the message counts the other broken rules)."""
        if not self.failures:
            return
        first, others = self.failures[0], self.failures[1:]
        message = first.message
        if others:
            names = ", ".join(f.rule for f in others)
            message += f" ({len(others)} other rule(s) also failed: {names})"
        raise DataError(self.path, first.rule, message, first.records)


# ---------------------------------------------------------------------------------------------- GX engine


#: GX loggers held at WARNING while we use GX: at INFO, importing GX alone logs ~200 lines of
#: "Skipping registering function ... because it is a closure", which buried a failed task's reason.
GX_LOGGERS = ("great_expectations",)


def quiet_gx_logs() -> None:
    """Hold Great Expectations' loggers at WARNING (called where this module starts GX, not at import)."""
    import logging

    for name in GX_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET,) or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class _Engine:
    """One ephemeral GX context holding the pandas data source and the train and test suites."""

    def __init__(self):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        quiet_gx_logs()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        from ml.expectations import build_suite

        no_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                # no throw-away default docs site in /tmp: reports go only where report_dir says
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=no_bars,
            ),
        )
        ctx.variables.progress_bars = no_bars
        asset = ctx.data_sources.add_pandas("turkey").add_dataframe_asset("records")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_file")
        self.context = ctx
        self.suites = {split: ctx.suites.add(build_suite(split)) for split in SPLITS}
        self.lock = threading.Lock()

    @property
    def store(self):
        return self.context.validation_results_store

    def run(self, split: str, frame, min_records: int):
        """Run the split's suite on the check frame. Nothing is stored (a stored COMPLETE result is
        serialised at once, which costs seconds at 120k records): see :meth:`build_docs`."""
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(
            self.suites[split],
            expectation_parameters={"min_records": int(min_records)},
            result_format={
                "result_format": "COMPLETE",
                "exclude_unexpected_values": True,
                "return_unexpected_index_query": False,
            },
        )

    def build_docs(self, site_dir: Path, result, split: str, batch_identifier: str) -> str:
        """Render ``result`` plus the suite into a static Data Docs site in ``site_dir``; return the path
        of this result's page (index.html if it cannot be located).

        The result is stored only while its page is rendered (trim it first: storing serialises it).
        """
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        site_dir.mkdir(parents=True, exist_ok=True)
        name = "turkey_report"
        config = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        if name in self.context.list_data_docs_sites():
            self.context.update_data_docs_site(name, config)
        else:
            self.context.add_data_docs_site(name, config)
        run_id = RunIdentifier(run_name=f"validate_{split}", run_time=datetime.now(UTC))
        result.meta["run_id"] = run_id
        result.meta["validation_time"] = run_id.run_time
        suite_id = ExpectationSuiteIdentifier(name=f"turkey_{split}")
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch_identifier
        )
        self.store.set(key, result)
        try:
            self.context.build_data_docs(site_names=[name], resource_identifiers=[key, suite_id])
            # The run's own result page: it renders its content even offline, whereas the index page's
            # table is filled by JavaScript loaded from CDNs.
            urls = self.context.get_docs_sites_urls(resource_identifier=key, site_name=name, only_if_exists=True)
        finally:
            self.store.remove_key(key)
        url = (urls[0].get("site_url") if urls else None) or ""
        page = Path(url[len("file://") :]) if url.startswith("file://") else None
        return str(page) if page is not None and page.is_file() else str(site_dir / "index.html")

    def structural_result(self, split: str, failure: Failure, path: str):
        """A hand-made validation result for a file that could not be parsed (so Data Docs can show it)."""
        from great_expectations.core.expectation_validation_result import (
            ExpectationSuiteValidationResult,
            ExpectationValidationResult,
        )
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        config = ExpectationConfiguration(
            type="expect_table_row_count_to_be_between",
            kwargs={"min_value": 1},
            meta={"rule": failure.rule},
            description=f"The file can be parsed as a JSON list of records (rule {failure.rule})",
        )
        evr = ExpectationValidationResult(
            success=False,
            expectation_config=config,
            result={},
            exception_info={
                "raised_exception": True,
                "exception_message": f"rule '{failure.rule}' broken: {failure.message}",
                "exception_traceback": f"{path}: the file could not be parsed, so no record rule was checked",
            },
        )
        suite_name = f"turkey_{split}"
        return ExpectationSuiteValidationResult(
            success=False,
            results=[evr],
            suite_name=suite_name,
            statistics={
                "evaluated_expectations": 1,
                "successful_expectations": 0,
                "unsuccessful_expectations": 1,
                "success_percent": 0.0,
            },
            meta={"file": path},
        )


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


# ---------------------------------------------------------------------------------------------- helpers


def _fmt_records(records, limit: int = SHOW_RECORDS) -> str:  # as DataError.describe()
    shown = ", ".join(f"#{i}" + (f" (vid_id={vid!r})" if vid is not None else "") for i, vid in records[:limit])
    more = f" and {len(records) - limit} more" if len(records) > limit else ""
    return f"[records: {shown}{more}]" if records else ""


def _values(values, limit: int = 5) -> str:
    vals = sorted(set(values))
    text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals[:limit])
    return text + (", ..." if len(vals) > limit else "")


def _detail(rule: str, summary: dict, idx: np.ndarray, observed, min_records: int) -> str:
    """Rule-specific detail about what was found (from the summary columns of the offending records)."""
    s = summary
    if rule == "fields.required":
        counts: dict[str, int] = {}
        for i in idx:
            for f in str(s["missing_fields"][i]).split(","):
                counts[f] = counts.get(f, 0) + 1
        return "missing: " + ", ".join(f"{f} ({c}x)" for f, c in sorted(counts.items()))
    if rule == "time.duration":
        return f"longest clip {np.nanmax(s['duration'][idx]):g} s"
    if rule == "embedding.frames":
        return "found " + _values(s["n_frames"][idx].tolist()) + " frame(s)"
    if rule == "embedding.row_length":
        lens = {int(v) for v in np.concatenate([s["row_len_min"][idx], s["row_len_max"][idx]]) if v != N_FEATURES}
        text = "found frames of " + _values([v for v in lens if v >= 0]) + " value(s)" if lens - {-1} else ""
        return "; ".join(t for t in (text, "frames that are not lists" if -1 in lens else "") if t)
    if rule == "embedding.value_range":
        return f"found values from {int(s['value_min'][idx].min())} to {int(s['value_max'][idx].max())}"
    if rule == "embedding.value_type":
        return f"{int(s['n_bad_values'][idx].sum())} non-integer value(s)"
    if rule == "records.min_count":
        return f"found {observed}, need at least {min_records}"
    if rule == "label.both_classes":
        labels = np.asarray(s["label"], dtype=float)[np.asarray(s["label_ok"], dtype=bool)]
        found = sorted({int(v) for v in labels})
        return f"only class {found[0]} present" if found else "no valid labels"
    if rule == "label.balance":
        share = float(observed) if observed is not None else float("nan")
        return f"positives are {share:.1%} of the labelled records" if share == share else "no valid labels"
    if rule == "fields.extra":
        names = sorted({f for i in idx for f in str(s["extra_fields"][i]).split(",") if f})
        return "unknown: " + ", ".join(names[:10])
    return ""


def _judge(result, summary: dict, n: int, min_records: int) -> tuple[list[Failure], list[str]]:
    """Group GX expectation results by rule; return (failures, warnings) in rule-table order."""
    from ml.expectations.columns import utf8_ok

    ids = summary["vid_id"]
    ok_ids = np.asarray(summary["vid_id_ok"], dtype=bool) & utf8_ok(ids)
    broken: dict[str, dict] = {}
    for r in result.results:
        cfg = r.expectation_config
        rule = (cfg.meta or {}).get("rule", cfg.type)
        is_warning = RULES.get(rule, ("failure", ""))[0] == "warning" or str(cfg.severity.value) == "warning"
        exc = r.exception_info or {}
        if r.success and not exc.get("raised_exception"):
            continue
        entry = broken.setdefault(rule, {"warning": is_warning, "idx": set(), "observed": None})
        res = r.result or {}
        entry["idx"].update(int(i) for i in res.get("unexpected_index_list") or [])
        if "observed_value" in res:
            entry["observed"] = res["observed_value"]
        if exc.get("raised_exception"):
            entry["error"] = str(exc.get("exception_message"))
    failures, warnings = [], []
    order = list(RULES)
    for rule in sorted(broken, key=lambda r: order.index(r) if r in order else len(order)):
        entry = broken[rule]
        idx = np.array(sorted(entry["idx"]), dtype=np.int64)
        records = [(int(i), str(ids[i]) if ok_ids[i] else None) for i in idx]  # no vid_id to name: None
        text = RULES.get(rule, ("failure", rule))[1]
        if "error" in entry:
            text += f" (check could not run: {entry['error']})"
        else:
            if len(idx):
                text += f": {len(idx)} of {n} record(s) break it"
            detail = _detail(rule, summary, idx, entry["observed"], min_records)
            text += f" ({detail})" if detail else ""
        if entry["warning"]:
            warnings.append(f"{rule}: {text} {_fmt_records(records)}".rstrip())
        else:
            failures.append(Failure(rule, text, records))
    return failures, warnings


def _cross_file(records: Records, reference: ValidationOutcome, threshold: float) -> list[str]:
    """Warnings comparing a test file with the train file (vid_id overlap, frame statistics drift)."""
    out = []
    ref = reference.records
    if ref is None or not len(ref) or not len(records):
        return out
    test_ids = records.summary["vid_id"]
    ok = records.summary["vid_id_ok"].astype(bool)
    shared = np.isin(test_ids, ref.summary["vid_id"][ref.summary["vid_id_ok"].astype(bool)]) & ok
    if shared.any():
        recs = [(int(i), str(test_ids[i])) for i in np.flatnonzero(shared)]
        out.append(
            f"overlap.vid_id: {len(recs)} test record(s) share a vid_id with the train file "
            f"{reference.path} (possible leakage) {_fmt_records(recs)}"
        )
    a = ref.summary["frame_mean"]
    b = records.summary["frame_mean"]
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) >= 2 and len(b) >= 1:
        sd = float(a.std(ddof=1))
        shift = abs(float(b.mean()) - float(a.mean()))
        score = shift / sd if sd > 0 else (0.0 if shift == 0 else float("inf"))
        if score > threshold:
            out.append(
                f"drift.frame_mean: mean frame value {b.mean():.2f} (test) vs {a.mean():.2f} (train) differs by "
                f"{score:.2f} train sd (threshold {threshold:g})"
            )
    return out



def _trim_for_docs(result, limit: int = 20):
    """Shorten per-record lists in the GX result so the HTML stays small at any file size."""
    for r in result.results:
        res = r.result or {}
        for k in ("unexpected_index_list", "unexpected_list", "partial_unexpected_index_list"):
            if isinstance(res.get(k), list) and len(res[k]) > limit:
                res[k] = res[k][:limit]
    return result


# ---------------------------------------------------------------------------------------------- public API


def validate_file(
    path,
    split: str,
    *,
    report_dir=None,
    min_records: int = DEFAULT_MIN_RECORDS,
    reference: ValidationOutcome | None = None,
    drift_threshold: float = DRIFT_THRESHOLD,
) -> ValidationOutcome:
    """Validate a train or test file. Never raises for bad data: problems land in ``failures``/``warnings``.

    ``reference`` is the train outcome when validating test (vid_id overlap and drift warnings).
    ``min_records`` applies to training files only (``records.min_count``); a test file needs one record,
    in the DAG and the CLI alike.
    With ``report_dir``, writes ``validation-<split>.json`` and a Data Docs site
    ``data-docs-<split>/index.html`` there (also when the file fails).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    t0 = time.perf_counter()
    quiet_gx_logs()
    if split != "train":
        min_records = 1  # records.min_count is a training-file rule
    path = str(path)
    outcome = ValidationOutcome(path=path, split=split, records=None)
    engine = None  # started only when needed: a file that fails to parse is judged without GX
    result = None
    try:
        records = read_records(path)
    except DataError as exc:
        outcome.failures.append(Failure(exc.rule, exc.message, list(exc.records)))
        records = None
    if records is not None:
        from ml.expectations.columns import check_frame

        outcome.records = records
        frame = check_frame(records.summary_frame())
        engine = _engine()
        with engine.lock:
            result = engine.run(split, frame, min_records)
        failures, warnings = _judge(result, records.summary, len(records), min_records)
        outcome.failures += failures
        outcome.warnings += warnings
        if reference is not None and split == "test":
            outcome.warnings += _cross_file(records, reference, drift_threshold)
    if report_dir is not None:
        _write_reports(outcome, engine or _engine(), Path(report_dir), result, min_records, time.perf_counter() - t0)
    return outcome


def _write_reports(outcome: ValidationOutcome, engine: _Engine, report_dir: Path, result, min_records, took):
    split = outcome.split
    site_dir = report_dir / f"data-docs-{split}"
    with engine.lock:
        try:
            if result is None:
                result, batch = engine.structural_result(split, outcome.failures[0], outcome.path), "unparsed_file"
            else:
                result.meta["file"] = outcome.path
                _trim_for_docs(result)
                batch = result.batch_id or "records"
            outcome.report_html = engine.build_docs(site_dir, result, split, batch)
        except Exception as exc:  # noqa: BLE001 - a broken report must not hide the verdict
            outcome.warnings.append(f"report: could not build Data Docs in {site_dir}: {type(exc).__name__}: {exc}")
    payload = {
        "file": outcome.path,
        "split": split,
        "ok": outcome.ok,
        "n_records": len(outcome.records) if outcome.records is not None else None,
        "min_records": min_records,
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(took, 3),
        "failures": [
            {
                "rule": f.rule,
                "message": f.message,
                "n_records": len(f.records),
                "records": [[i, v] for i, v in f.records[:JSON_RECORDS]],
            }
            for f in outcome.failures
        ],
        "warnings": outcome.warnings,
        "report_html": outcome.report_html,
        "rules": {name: {"kind": kind, "description": text} for name, (kind, text) in RULES.items()},
    }
    try:
        outcome.report_json = write_json(payload, report_dir / f"validation-{split}.json", sort_keys=False)
    except OSError as exc:  # e.g. a read-only report folder: the verdict still stands
        outcome.warnings.append(f"report: could not write {report_dir}: {exc}")


def reject_file(path, report_dir=None) -> str:
    """Move ``path`` to ``<its folder>/../rejected/<UTC timestamp>-<name>`` (never deleting, never overwriting).

    The file is moved, never copied-and-kept: exactly one of the original and the rejected file exists
    afterwards. Within one filesystem this is a rename; across filesystems the copy is completed under a
    temporary name and renamed into place before the original is removed, and if the original cannot be
    removed (a read-only landing folder) the copy is deleted again. Disk-full/read-only/permission errors
    raise :class:`~ml.errors.EnvironmentFault` with the original in place and no copy left behind.
    A copy of ``report_dir`` (when given and present) goes beside it as ``<new name>.report/`` (best
    effort: a failure there is logged, the move stands). Returns the new path.
    """
    import errno
    import logging

    from ml.fsutil import TMP_PREFIX, environment_errors

    src = Path(path).absolute()
    if not src.is_file():
        raise DataError(src, "file.readable", "cannot reject: no such file")
    rejected = src.parent.parent / "rejected"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with environment_errors(rejected):
        rejected.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:  # reserve a fresh name atomically (O_EXCL), then move onto our own placeholder
            dest = rejected / (f"{stamp}-{src.name}" if n == 0 else f"{stamp}-{n}-{src.name}")
            try:
                os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                break
            except FileExistsError:
                n += 1
        moved = False
        try:
            try:
                os.replace(src, dest)
                moved = True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                tmp = dest.with_name(f"{TMP_PREFIX}{os.getpid()}-{dest.name}")
                try:
                    shutil.copy2(src, tmp)
                    os.replace(tmp, dest)
                finally:
                    if tmp.exists():
                        tmp.unlink()
                os.unlink(src)  # only now is the copy complete; on failure the copy goes (below)
                moved = True
        finally:
            if not moved:
                dest.unlink(missing_ok=True)
    if report_dir is not None and Path(report_dir).is_dir():
        target = dest.with_name(dest.name + ".report")
        try:
            shutil.copytree(report_dir, target, dirs_exist_ok=False)
        except OSError as exc:
            shutil.rmtree(target, ignore_errors=True)
            logging.getLogger("ml.validation").warning("could not copy the report %s beside %s: %s", report_dir, dest, exc)
    return str(dest)
