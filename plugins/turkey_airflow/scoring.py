"""The body of the ``turkey_scoring`` task: one scoring run (:func:`ml.scoring.job.score_batches`) with the
run's :class:`ml.config.ScoringConfig`, and one ``turkey_scores`` asset event per batch it published."""

from __future__ import annotations

import logging

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowSkipException

from turkey_airflow import lineage
from turkey_airflow.assets import SCORES, SCORES_BY_BATCH, scores_announcement
from turkey_airflow.mirror import mlflow_environment
from turkey_airflow.tasks import task_body

log = logging.getLogger(__name__)


@task_body
def score_batches() -> dict:
    """Score what the champion has not scored (never training), publish while it is champion, announce each
    published batch once. Skips, saying why, when there is no champion yet or nothing to score."""
    from ml.config import ScoringConfig
    from ml.registry import Registry
    from ml.scoring.job import score_batches as run
    from ml.scoring.store import ScoreStore
    from ml.settings import resolve_input, run_dir

    ctx = get_current_context()
    cfg, run_id = ScoringConfig.from_params(ctx["params"]), ctx["dag_run"].run_id
    reg, work = Registry(), run_dir(run_id)
    report = run(reg, cfg, resolve_input(cfg.batch_dir), resolve_input(cfg.test_file) if cfg.test_file else None,
                 run_id, work / "champion", report_dir=work / "validation" / "batches")
    if "waiting" in report:
        raise AirflowSkipException(report["waiting"])
    if not report["batches"] and not report["announce"]:
        raise AirflowSkipException(f"nothing to score: every batch has the scores of champion {report['champion']}")
    store = ScoreStore(reg)
    for record in report["announce"]:
        latest = reg.display(store.path(record["batch"], "latest.csv"))
        ctx["outlet_events"][SCORES_BY_BATCH].add(SCORES, extra=scores_announcement(record, latest))
    store.mark_announced(report["announce"])
    lineage.record(inputs=[lineage.model_dataset(reg, report["champion"])]
                   + [lineage.dataset(r["input_file"], version=r["input_sha256"]) for r in report["announce"]],
                   outputs=[lineage.dataset(reg.display(store.path(r["batch"], "latest.csv")), version=r["version"])
                            for r in report["announce"]], context=ctx)
    summary = {"champion": report["champion"], "announced": [r["batch"] for r in report["announce"]],
               "batches": [{k: v for k, v in b.items() if k != "record"} for b in report["batches"]]}
    if mlflow_environment():  # the scorings mirrored to MLflow (bounded; never fails the run)
        from ml import mlflow_mirror

        summary["mlflow"] = mlflow_mirror.catch_up(reg)["status"]
    for b in summary["batches"]:
        log.info("batch %s: %s%s", b["batch"], b["status"], f" ({b['reason']})" if b.get("reason") else "")
    return summary
