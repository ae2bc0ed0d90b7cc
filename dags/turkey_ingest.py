"""turkey_ingest: watch the landing folder; announce new data as an asset event only when it changed."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from turkey_airflow.assets import INCOMING_DATA
from turkey_airflow.ingest import check_landing

with DAG(
    dag_id="turkey_ingest",
    description="Emit turkey_incoming_data when train.json/test.json in the landing folder change",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["turkey"],
):
    task(check_landing, task_id="check_landing", outlets=[INCOMING_DATA], retries=0)()
