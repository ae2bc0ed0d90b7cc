"""turkey_ingest: watch the landing folder; announce new training data (training) and new unlabelled batches
(scoring) as asset events, each only when its content changed."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from turkey_airflow.assets import INCOMING_BATCHES, INCOMING_DATA
from turkey_airflow.ingest import check_batches, check_landing

with DAG(
    dag_id="turkey_ingest",
    description="Emit turkey_incoming_data when train.json changes, turkey_incoming_batches for unscored batches",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["turkey"],
):
    task(check_landing, task_id="check_landing", outlets=[INCOMING_DATA], retries=0)()
    task(check_batches, task_id="check_batches", outlets=[INCOMING_BATCHES], retries=0)()
