"""What people are shown of the registry (ml.registry.views): human decisions on record, one row per version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ml.registry import VERSION_FILES, Registry
from ml.registry.views import version_rows


def _register(reg: Registry, version: str, run_id: str, tmp_path: Path) -> None:
    cand = tmp_path / f"cand-{version}"
    cand.mkdir()
    for f in VERSION_FILES:
        (cand / f).write_text("{}" if f.endswith(".json") else "x")
    reg.register(version, cand, {"run_id": run_id, "metrics": {"val_accuracy": 0.9, "val_auc": 0.95},
                                 "gate": {"decision": "promote", "reason": "no champion yet"}})


def test_decisions_are_on_record_and_listed(tmp_path, capsys):
    from ml.cli import main
    from turkey_airflow.approval import decision_record, describe_decision

    reg = Registry(tmp_path / "reg")
    _register(reg, "v20261128T100000-aaaaaaaa", "manual__a", tmp_path)
    _register(reg, "v20261128T110000-bbbbbbbb", "manual__b", tmp_path)
    at = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    approved = decision_record({"chosen_options": ["Approve"], "responded_by_user": {"id": "7", "name": "alice"},
                                "responded_at": at, "params_input": {"comment": "better on both metrics"}})
    assert approved == {"decision": "approved", "by": "alice", "user_id": "7", "at": at.isoformat(),
                        "comment": "better on both metrics"}
    rejected = decision_record({"chosen_options": ["Reject"], "responded_by_user": {"id": "8", "name": "bob"},
                                "responded_at": at, "params_input": {}})
    assert rejected["decision"] == "rejected" and rejected["comment"] is None
    assert describe_decision(rejected, "v2").startswith("rejected by bob at 2026-11-28T10:30:00+00:00")

    reg.promote("v20261128T100000-aaaaaaaa", reason="no champion yet", approval=approved, run_id="manual__a")
    reg.record_rejection("v20261128T110000-bbbbbbbb", user="bob", approval=rejected, run_id="manual__b")
    assert reg.champion()["approval"]["by"] == "alice"
    entries = {e["action"]: e for e in reg.audit()}
    assert entries["promote"]["approval"]["comment"] == "better on both metrics"
    assert entries["rejected"]["version"] == "v20261128T110000-bbbbbbbb" and entries["rejected"]["user"] == "bob"
    rows = {r["version"]: r for r in version_rows(reg)}
    assert rows["v20261128T110000-bbbbbbbb"]["gate"] == "rejected"  # no longer reads as "promote"
    assert rows["v20261128T100000-aaaaaaaa"]["gate"] == "promote"
    assert rows["v20261128T100000-aaaaaaaa"]["decision"]["by"] == "alice"

    assert main(["models", "--artifacts", str(tmp_path / "reg"), "list"]) == 0
    out = capsys.readouterr().out
    assert "approved by alice" in out and "rejected by bob" in out
    assert main(["models", "--artifacts", str(tmp_path / "reg"), "show", "v20261128T110000-bbbbbbbb"]) == 0
    assert "decision: rejected by bob" in capsys.readouterr().out
