"""What people are shown of the registry: one version described (:func:`describe`), one row per version
(:func:`version_rows`, for ``turkey models list`` and the console alike) and the human decisions in the
audit log (:func:`decisions`). Read-only functions over a :class:`ml.registry.Registry`'s public methods.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_UNREAD = object()  # ``champion=`` not given: read the pointer


def decision_of(entry: dict) -> dict | None:
    """The human decision one audit entry records (an approval or a rejection), else None:
    ``{decision, by, at, comment, run_id}``; ``by``/``at`` fall back to the entry's ``user``/``at``."""
    approval = entry.get("approval") if isinstance(entry.get("approval"), dict) else None
    if not approval and entry.get("action") != "rejected":
        return None
    approval = approval or {}
    return {
        "decision": approval.get("decision") or ("rejected" if entry.get("action") == "rejected" else "approved"),
        "by": approval.get("by") or entry.get("user"),
        "at": approval.get("at") or entry.get("at"),
        "comment": approval.get("comment"),
        "run_id": entry.get("run_id"),
    }


def decisions(registry, version: str | None = None, audit: list[dict] | None = None) -> list[dict]:
    """Human approvals and rejections from the audit log (of ``version``, or all), oldest first."""
    entries = registry.audit() if audit is None else audit
    return [{"version": e.get("version"), **d} for e in entries
            if (d := decision_of(e)) is not None and version in (None, e.get("version"))]


def describe(registry, ref: str, champion=_UNREAD) -> dict:
    """Paths, metrics, manifest and human decisions of ``ref`` (a version, ``champion`` or ``latest``).
    ``champion``: the champion's version when the caller has just read it (None: there is none)."""
    version = registry.resolve(ref)
    champion = registry.champion_version() if champion is _UNREAD else champion
    metrics_path = registry.version_path(version, "metrics.json")
    files = {"model": "model.keras", "submission": "submission.csv", "curves": "curves.png"}
    return {
        "version": version,
        "is_champion": champion == version,
        **{key: registry.display(registry.version_path(version, name)) for key, name in files.items()},
        "metrics": registry.storage.read_json(metrics_path) if registry.storage.isfile(metrics_path) else {},
        "manifest": registry.manifest(version),
        "decisions": decisions(registry, version),
    }


def version_rows(registry, champion=_UNREAD) -> list[dict]:
    """One row per version, oldest first: its run, figures, the gate decision (``rejected`` once a human
    rejected it) and its reason, the latest human ``decision``, ``ever_promoted``, ``champion`` and the
    version's audit ``history``. ``champion``: as for :func:`describe`."""
    champ = registry.champion_version() if champion is _UNREAD else champion
    audit = registry.audit()
    promoted = {e.get("version") for e in audit if e.get("action") in ("promote", "rollback")}
    decided = {d["version"]: d for d in decisions(registry, audit=audit)}  # the latest per version
    rows = []
    for v in registry.versions():
        man = registry.manifest(v)
        m, gate = man.get("metrics") or {}, man.get("gate") or {}
        rejected = decided.get(v, {}).get("decision") == "rejected"
        rows.append({
            "version": v,
            "created_at": man.get("created_at"),
            "dag_id": man.get("dag_id"),
            "run_id": man.get("run_id"),
            "val_accuracy": m.get("val_accuracy"),
            "val_auc": m.get("val_auc"),
            "baseline_auc": (m.get("baseline_logreg") or {}).get("val_auc"),
            "gate": "rejected" if rejected else gate.get("decision"),
            "gate_reason": gate.get("reason"),
            "decision": decided.get(v),
            "ever_promoted": v in promoted,
            "champion": v == champ,
            "history": [e for e in audit if e.get("version") == v],
        })
    return rows
