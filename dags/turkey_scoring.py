"""turkey_scoring: the champion scores every new unlabelled batch, and re-scores the recent ones when the
champion changes. Never trains.

Thin by design: wiring, schedule and params only. The body is turkey_airflow/scoring.py, the job
ml/scoring/. Nothing heavy (TensorFlow, GE) is imported at parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from ml.config import ScoringConfig
from turkey_airflow import notify
from turkey_airflow.assets import INCOMING_BATCHES, MODEL, SCORES_BY_BATCH
from turkey_airflow.params import dag_params
from turkey_airflow.scoring import score_batches

with DAG(
    dag_id="turkey_scoring",
    description="Score new unlabelled batches with the champion; re-score recent ones when the champion changes",
    # A new batch (turkey_ingest) or a new champion (promotion, rollback), whichever comes.
    schedule=(INCOMING_BATCHES | MODEL),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one run publishes at a time; each batch is scored once per champion
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30),
                  "on_failure_callback": notify.TurkeyNotifier("run_failed")},
    tags=["turkey", "ml"],
    # One Param per field of ml.config.ScoringConfig.
    params=dag_params(ScoringConfig),
):
    task(score_batches, task_id="score_batches", multiple_outputs=False, outlets=[SCORES_BY_BATCH])()
