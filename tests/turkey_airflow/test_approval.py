"""turkey_airflow.approval: a human response becomes a decision on record; Approve hands it to promote,
Reject is audited and ends the task skipped (not a green success)."""

import types
from datetime import UTC, datetime

import pytest

from tests.support.candidates import seeded_registry

AT = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)


def _operator():
    from turkey_airflow.approval import PromotionApproval

    return PromotionApproval(task_id="approve_promotion", subject="Promote?", body="v2")


def _context(reg_version: str, run_id: str = "manual__r"):
    registered = {"version": reg_version, "reason": "better"}
    ti = types.SimpleNamespace(xcom_pull=lambda task_ids: registered if task_ids == "register" else None)
    return {"ti": ti, "dag_run": types.SimpleNamespace(run_id=run_id)}


def _event(option: str, comment: str | None = None) -> dict:
    return {"chosen_options": [option], "params_input": {"comment": comment} if comment else {},
            "responded_by_user": {"id": "7", "name": "alice"}, "responded_at": AT}


def test_the_operator_notifies_with_the_registered_result():
    op = _operator()
    assert [(n.event, n.result_of) for n in op.notifiers] == [("approval", "register")]
    assert "comment" in op.params


def test_approve_returns_the_decision_for_promote(tmp_path, monkeypatch):
    from airflow.providers.standard.operators.hitl import HITLOperator

    monkeypatch.setattr(HITLOperator, "execute_complete", lambda self, context, event: event)
    seeded_registry(tmp_path, ("v1", "v2"), champion="v1")
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "reg"))
    out = _operator().execute_complete(_context("v2"), _event("Approve", "fine"))
    assert out["approval"] == {"decision": "approved", "by": "alice", "user_id": "7", "at": AT.isoformat(),
                               "comment": "fine"}


def test_reject_is_audited_once_and_ends_skipped(tmp_path, monkeypatch):
    from airflow.providers.standard.operators.hitl import HITLOperator
    from airflow.sdk.exceptions import AirflowSkipException

    monkeypatch.setattr(HITLOperator, "execute_complete", lambda self, context, event: event)
    reg = seeded_registry(tmp_path, ("v1", "v2"), champion="v1")
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "reg"))
    for _ in range(2):  # a retried task writes no second entry
        with pytest.raises(AirflowSkipException, match="^rejected by alice at .*: promotion of v2 skipped"):
            _operator().execute_complete(_context("v2"), _event("Reject"))
    rejected = [e for e in reg.audit() if e["action"] == "rejected"]
    assert [(e["version"], e["user"], e["run_id"]) for e in rejected] == [("v2", "alice", "manual__r")]
    assert reg.champion_version() == "v1"
