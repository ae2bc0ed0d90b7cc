"""turkey_training: validate -> split & pad -> train (gpu queue) -> evaluate -> gates -> publish.

Thin by design: wiring, schedule and params only. Task bodies live in plugins/turkey_airflow/tasks.py,
the ML in the ``ml`` package. Nothing heavy (TensorFlow, GE) is imported at parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, task

from turkey_airflow import mirror, notify, tasks
from turkey_airflow.approval import PromotionApproval
from turkey_airflow.assets import INCOMING_DATA, MODEL, SUBMISSION
from turkey_airflow.console.console_links import ModelVersionLink, ValidationReportLink
from turkey_airflow.params import dag_params

# Each task returns one small dict: push it as one XCom (not also one XCom per key).
step = partial(task, multiple_outputs=False)

with DAG(
    dag_id="turkey_training",
    description="Validate, retrain and publish the 'Don't call me turkey!' audio classifier",
    # New data (ingest DAG's asset event) or the weekly retrain, whichever comes first.
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=INCOMING_DATA),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    # A task that fails for good (retries spent) notifies: task, one-line reason, link (turkey_airflow.notify).
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30),
                  "on_failure_callback": notify.TurkeyNotifier("run_failed")},
    # Run unfinished `run_deadline_minutes` after it was queued: the triggerer sends a notification.
    deadline=notify.run_deadline_alert(),
    tags=["turkey", "ml"],
    # One Param per field of ml.config.RunConfig: its default, bounds, description and form section.
    params=dag_params(),
) as dag:
    validated = step(tasks.validate, task_id="validate", retries=0)()
    prepared = step(tasks.prepare, task_id="split_and_pad")(validated)
    trained = step(tasks.train, task_id="train", queue="gpu")(prepared)
    metrics = step(tasks.evaluate, task_id="evaluate")(prepared, trained)
    gate = step(tasks.accuracy_gate, task_id="accuracy_gate", retries=0)(metrics)
    registered = step(tasks.register, task_id="register")(validated, trained, metrics)
    decided = task.branch(tasks.decide, task_id="decide",
                          on_success_callback=notify.TurkeyNotifier("challenger_lost", result_of="register"))(registered)
    approval = PromotionApproval(
        task_id="approve_promotion",
        registered_by="register",
        subject="Promote the new turkey model?",
        body="Version {{ ti.xcom_pull(task_ids='register')['version'] }}: "
             "{{ ti.xcom_pull(task_ids='register')['reason'] }}",
        response_timeout=timedelta(days=2),
    )
    promoted = step(tasks.promote, task_id="promote", outlets=[MODEL, SUBMISSION],
                    trigger_rule="none_failed_min_one_success",
                    on_success_callback=notify.TurkeyNotifier("promoted"))(registered)
    cleaned = step(tasks.cleanup, task_id="cleanup", trigger_rule="none_failed")()
    # Optional: the registry mirrored to MLflow (skipped without a tracking server; never fails the run).
    mirrored = step(mirror.mirror_to_mlflow, task_id="mirror_to_mlflow", trigger_rule="none_failed", retries=0)()
    # Extra links in the task view, to the model console pages (turkey_airflow.plugins).
    validated.operator.operator_extra_links = (ValidationReportLink(),)
    registered.operator.operator_extra_links = promoted.operator.operator_extra_links = (ModelVersionLink(),)
    gate >> registered
    decided >> [approval, promoted]
    approval >> promoted
    promoted >> cleaned >> mirrored
