"""The rule registry: the one place where every data rule is named, classified and described.

Each :class:`Rule` carries its name, its kind (``failure`` or ``warning``), the splits it applies to,
where it is checked (``parse``: :func:`ml.data.read_records`; ``gx``: an expectation in
``ml/expectations/``; ``cross-file``: :mod:`ml.validation.drift`), its one-line text, and (for GX rules)
how a broken rule's detail is described. The package docstring's rule table, the CLI help
(``turkey validate --help``, via :data:`RULES`), the failure messages and the expectations' descriptions
are all generated from :data:`REGISTRY`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.data import MAXLEN, N_FEATURES

log = logging.getLogger(__name__)

#: detail(summary columns, offending record indices, GX observed value, min_records) -> text ("" for none)
Detail = Callable[[dict, np.ndarray, object, int], str]


@dataclass(frozen=True)
class Rule:
    """One data rule: its name, kind, where it is checked, its one-line text and its failure detail."""

    name: str
    kind: str  # "failure" or "warning"
    text: str  # the one-line text shown in messages, the CLI help and the docs table
    check: str = "gx"  # "parse", "gx" or "cross-file"
    splits: tuple[str, ...] = ("train", "test")
    detail: Detail | None = None

    def describe(self, summary: dict, idx: np.ndarray, observed, min_records: int) -> str:
        """The rule-specific detail about what the offending records hold ("" when the rule has none)."""
        return self.detail(summary, idx, observed, min_records) if self.detail else ""


def format_values(values, limit: int = 5) -> str:
    """The distinct values, sorted, the first ``limit`` shown (``1.5, 3, ...``)."""
    vals = sorted(set(values))
    text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals[:limit])
    return text + (", ..." if len(vals) > limit else "")


def _comma_joined_counts(column: str) -> Detail:
    def detail(s, idx, observed, min_records):
        counts: dict[str, int] = {}
        for i in idx:
            for f in str(s[column][i]).split(","):
                counts[f] = counts.get(f, 0) + 1
        return "missing: " + ", ".join(f"{f} ({c}x)" for f, c in sorted(counts.items()))

    return detail


def _row_lengths(s, idx, observed, min_records) -> str:
    lens = {int(v) for v in np.concatenate([s["row_len_min"][idx], s["row_len_max"][idx]]) if v != N_FEATURES}
    text = "found frames of " + format_values([v for v in lens if v >= 0]) + " value(s)" if lens - {-1} else ""
    return "; ".join(t for t in (text, "frames that are not lists" if -1 in lens else "") if t)


def _both_classes(s, idx, observed, min_records) -> str:
    labels = np.asarray(s["label"], dtype=float)[np.asarray(s["label_ok"], dtype=bool)]
    found = sorted({int(v) for v in labels})
    return f"only class {found[0]} present" if found else "no valid labels"


def _balance(s, idx, observed, min_records) -> str:
    share = float(observed) if observed is not None else float("nan")
    return f"positives are {share:.1%} of the labelled records" if share == share else "no valid labels"


def _extra_fields(s, idx, observed, min_records) -> str:
    names = sorted({f for i in idx for f in str(s["extra_fields"][i]).split(",") if f})
    return "unknown: " + ", ".join(names[:10])


TRAIN, TEST = ("train",), ("test",)
MAX_DURATION_S = 10.0  # time.duration
MIN_CLASS_SHARE = 0.05  # label.balance: each class is at least this share of the labelled records
VALUE_RANGE = (0, 255)  # embedding.value_range
REQUIRED = "vid_id, start_time_seconds_youtube_clip, end_time_seconds_youtube_clip and audio_embedding"

#: Every rule, in report order.
REGISTRY: tuple[Rule, ...] = (
    Rule("file.readable", "failure", "the file exists and can be opened and read", "parse"),
    Rule("file.utf8", "failure", "the file is UTF-8 text", "parse"),
    Rule("file.non_empty", "failure", "the file is not empty or blank", "parse"),
    Rule("json.syntax", "failure", "the file is valid JSON", "parse"),
    Rule("json.complete", "failure", "the JSON is not truncated", "parse"),
    Rule("json.finite", "failure", "no NaN / Infinity literals", "parse"),
    Rule("json.list", "failure", "the top-level value is a list of records", "parse"),
    Rule("record.object", "failure", "every element of the list is a JSON object", "parse"),
    Rule("fields.required", "failure", f"every record has {REQUIRED}", detail=_comma_joined_counts("missing_fields")),
    Rule("vid_id.valid", "failure", "vid_id must be a non-empty string"),
    Rule("vid_id.unique", "failure", "vid_id must be unique in the file"),
    Rule("time.numeric", "failure", "start and end times must be finite numbers"),
    Rule("time.order", "failure", "the end time must be greater than the start time"),
    Rule("time.duration", "failure", f"a clip must last at most {MAX_DURATION_S:g} s",
         detail=lambda s, idx, o, m: f"longest clip {np.nanmax(s['duration'][idx]):g} s"),
    Rule("embedding.list", "failure", "audio_embedding must be a list of frames"),
    Rule("embedding.frames", "failure", f"audio_embedding must have 1 to {MAXLEN} frames",
         detail=lambda s, idx, o, m: "found " + format_values(s["n_frames"][idx].tolist()) + " frame(s)"),
    Rule("embedding.row_length", "failure", f"every frame must be a list of exactly {N_FEATURES} values", detail=_row_lengths),
    Rule("embedding.value_type", "failure", "every value must be an integer (no floats, strings, booleans or nulls)",
         detail=lambda s, idx, o, m: f"{int(s['n_bad_values'][idx].sum())} non-integer value(s)"),
    Rule("embedding.value_range", "failure", f"every value must be in {VALUE_RANGE[0]}..{VALUE_RANGE[1]}",
         detail=lambda s, idx, o, m: f"found values from {int(s['value_min'][idx].min())} "
                                     f"to {int(s['value_max'][idx].max())}"),
    Rule("label.required", "failure", "every train record must have is_turkey", splits=TRAIN),
    Rule("label.valid", "failure", "is_turkey must be the integer 0 or 1", splits=TRAIN),
    Rule("label.both_classes", "failure", "the train file must contain both classes", splits=TRAIN,
         detail=_both_classes),
    Rule("label.balance", "failure", f"each class must be at least {MIN_CLASS_SHARE:.0%} of the labelled records",
         splits=TRAIN, detail=_balance),
    Rule("records.min_count", "failure", "(train) the file must hold at least min_records records",
         detail=lambda s, idx, observed, min_records: f"found {observed}, need at least {min_records}"),
    Rule("fields.extra", "warning", "unknown fields are ignored", detail=_extra_fields),
    Rule("label.absent", "warning", "is_turkey in a test file is ignored", splits=TEST),
    Rule("overlap.vid_id", "warning", "vid_ids occur in both train and test", "cross-file", TEST),
    Rule("drift.frame_mean", "warning", "test frame statistics differ from train's", "cross-file", TEST),
)

#: Rule name -> :class:`Rule`.
BY_NAME: dict[str, Rule] = {r.name: r for r in REGISTRY}

#: Rule name -> (kind, one-line text), in report order (the CLI help and the JSON report use it).
RULES: dict[str, tuple[str, str]] = {r.name: (r.kind, r.text) for r in REGISTRY}


def rules_table() -> str:
    """The registry as a reStructuredText table (the package docstring shows it)."""
    header = ("Rule", "Kind", "Checked", "Splits", "Meaning")
    rows = [(r.name, r.kind, r.check, "/".join(r.splits), r.text) for r in REGISTRY]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    border = "  ".join("=" * w for w in widths)

    def line(row) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([border, line(header), border, *map(line, rows), border])
