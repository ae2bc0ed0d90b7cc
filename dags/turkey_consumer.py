"""turkey_consumer: an example downstream DAG, scheduled on the published submission asset."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from turkey_airflow.assets import SUBMISSION
from turkey_airflow.consumer import summarise_submission

with DAG(
    dag_id="turkey_consumer",
    description="Example consumer: reads the submission asset's event extra and the CSV, logs a summary",
    schedule=[SUBMISSION],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["turkey", "example"],
):
    task(summarise_submission, task_id="summarise_submission")()
