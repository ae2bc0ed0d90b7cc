"""Turn a GX suite result into failures and warnings, one per broken rule, worded from the rule registry."""

from __future__ import annotations

import logging

import numpy as np

from ml.validation.outcome import Failure, format_records
from ml.validation.rules import BY_NAME, REGISTRY, Rule

log = logging.getLogger(__name__)


def _collect(result) -> dict[str, dict]:
    """Broken rule name -> {"warning", "idx" (offending record indices), "observed", "error"?}."""
    broken: dict[str, dict] = {}
    for r in result.results:
        cfg = r.expectation_config
        rule = (cfg.meta or {}).get("rule", cfg.type)
        known = BY_NAME.get(rule)
        is_warning = (known is not None and known.kind == "warning") or str(cfg.severity.value) == "warning"
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
    return broken


def judge(result, summary: dict, n: int, min_records: int) -> tuple[list[Failure], list[str]]:
    """Group GX expectation results by rule; return (failures, warnings) in registry order."""
    from ml.expectations.columns import utf8_ok

    ids = summary["vid_id"]
    ok_ids = np.asarray(summary["vid_id_ok"], dtype=bool) & utf8_ok(ids)
    broken = _collect(result)
    order = [r.name for r in REGISTRY]
    failures, warnings = [], []
    for name in sorted(broken, key=lambda r: order.index(r) if r in order else len(order)):
        entry = broken[name]
        rule = BY_NAME.get(name, Rule(name, "failure", name))  # an unlabelled expectation: named by its type
        idx = np.array(sorted(entry["idx"]), dtype=np.int64)
        records = [(int(i), str(ids[i]) if ok_ids[i] else None) for i in idx]  # no vid_id to name: None
        text = rule.text
        if "error" in entry:
            text += f" (check could not run: {entry['error']})"
        else:
            if len(idx):
                text += f": {len(idx)} of {n} record(s) break it"
            detail = rule.describe(summary, idx, entry["observed"], min_records)
            text += f" ({detail})" if detail else ""
        if entry["warning"]:
            warnings.append(f"{name}: {text} {format_records(records)}".rstrip())
        else:
            failures.append(Failure(name, text, records))
    return failures, warnings
