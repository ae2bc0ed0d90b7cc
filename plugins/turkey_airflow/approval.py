"""The human approval of a promotion, with the decision on record.

:class:`PromotionApproval` is Airflow's ``ApprovalOperator`` (options Approve / Reject, plus an optional
``comment`` field) that also

* notifies that a version waits (``TurkeyNotifier("approval")``: version, AUCs against the champion,
  link to the approval page);
* logs the decision as its last line: the choice, who, when and the comment;
* on Approve, returns the decision (``approval`` in its XCom), which ``promote`` writes into
  ``champion.json`` and the audit entry;
* on Reject, writes an audit ``rejected`` entry for the version (``Registry.record_rejection``) and ends
  *skipped* with the decision as its message, so the grid does not show a green "success" for a
  promotion that did not happen; ``promote`` finds no approval and skips too.
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowSkipException

from turkey_airflow.notify import TurkeyNotifier

log = logging.getLogger(__name__)


def decision_record(event: dict) -> dict:
    """The JSON-able record of a human response: ``decision``, ``by``, ``user_id``, ``at``, ``comment``."""
    user = event.get("responded_by_user") or {}
    at = event.get("responded_at")
    comment = (event.get("params_input") or {}).get("comment") or None
    chosen = (event.get("chosen_options") or ["?"])[0]
    return {
        "decision": {"Approve": "approved", "Reject": "rejected"}.get(chosen, chosen),
        "by": user.get("name") or user.get("id") or "unknown",
        "user_id": user.get("id"),
        "at": at.isoformat() if isinstance(at, datetime) else at,
        "comment": comment,
    }


def describe_decision(record: dict, version: str | None) -> str:
    """One line for the task log and the skip message: who decided what, when, and the comment."""
    text = f"{record['decision']} by {record['by']} at {record['at']}: promotion of {version}"
    text += " goes ahead" if record["decision"] == "approved" else " skipped"
    return text + (f" (comment: {record['comment']})" if record.get("comment") else "")


class PromotionApproval(ApprovalOperator):
    """Approve or reject promoting the version that task ``registered_by`` registered (its return value has
    ``version`` and the gate's ``reason``); the decision is logged and recorded."""

    def __init__(self, registered_by: str = "register", **kwargs):
        kwargs.setdefault(
            "params",
            {
                "comment": Param(
                    None,
                    type=["null", "string"],
                    title="Comment",
                    description="Optional: why you approve or reject (recorded in the audit log).",
                )
            },
        )
        kwargs.setdefault("notifiers", [TurkeyNotifier("approval", result_of=registered_by)])
        super().__init__(**kwargs)
        self.registered_by = registered_by

    def execute_complete(self, context, event: dict):
        """Record the human response: on Approve return it with ``approval``; on Reject audit it and skip."""
        # HITLOperator's part only (validate the response, fill the summary): ApprovalOperator's would end
        # a Reject as a green success that skips downstream; here a Reject ends this task skipped.
        result = HITLOperator.execute_complete(self, context=context, event=event)
        record = decision_record(result)
        self.hitl_summary_extra["approved"] = record["decision"] == "approved"
        registered = context["ti"].xcom_pull(task_ids=self.registered_by) or {}
        version = registered.get("version")
        message = describe_decision(record, version)
        if record["decision"] == "approved":
            log.info("decision: %s", message)
            return {**result, "approval": record}
        if version:
            from ml.registry import Registry

            Registry().record_rejection(
                version,
                user=record["by"],
                reason=f"promotion rejected by {record['by']}",
                approval=record,
                run_id=context["dag_run"].run_id,
            )
        log.info("decision: %s", message)
        # promote (trigger rule none_failed_min_one_success) then finds no approval and skips as well
        raise AirflowSkipException(message)
