"""turkey_training: validate -> split & pad -> train (gpu queue) -> evaluate -> gates -> publish.

Thin by design: wiring, schedule and params only. Task bodies live in plugins/turkey_airflow/tasks.py,
the ML in the ``ml`` package. Nothing heavy (TensorFlow, GE) is imported at parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param, task

from ml import defaults
from turkey_airflow import notify, tasks
from turkey_airflow.approval import PromotionApproval
from turkey_airflow.assets import INCOMING_DATA, MODEL, SUBMISSION
from turkey_airflow.console.console_links import ModelVersionLink, ValidationReportLink

DATA, GATES, RECIPE, PUBLISH = "Input data", "Quality gates", "Training recipe", "Publishing"
ALERTS = "Alerts"
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
    params={
        "train_file": Param(defaults.TRAIN_FILE, type="string", minLength=1, section=DATA,
                            description="Training JSON, relative to the data root (TURKEY_DATA_ROOT)."),
        "test_file": Param(defaults.TEST_FILE, type="string", minLength=1, section=DATA,
                           description="Test JSON to score, relative to the data root."),
        "min_records": Param(defaults.MIN_RECORDS, type="integer", minimum=1, section=DATA,
                             description="Reject a training file with fewer records."),
        "min_val_accuracy": Param(defaults.MIN_VAL_ACCURACY, type="number", minimum=0, maximum=1, section=GATES,
                                  description="Fail the run (publish nothing) below this validation accuracy."),
        "auc_tolerance": Param(defaults.AUC_TOLERANCE, type="number", minimum=0, maximum=1, section=GATES,
                               description="Promote when, at gate_confidence, the challenger's AUC is not worse "
                                           "than the champion's by more than this (CI lower end of challenger - "
                                           "champion >= -tolerance), on records neither model trained on."),
        "gate_confidence": Param(defaults.GATE_CONFIDENCE, type="number", exclusiveMinimum=0, exclusiveMaximum=1, section=GATES,
                                 description="Two-sided confidence of the interval on the AUC difference."),
        "gate_method": Param(defaults.GATE_METHOD, type="string", enum=defaults.gate_methods(), section=GATES,
                             description="Paired AUC comparison: DeLong's variance, or a seeded paired "
                                         "bootstrap (2,000 resamples)."),
        "min_gate_records": Param(defaults.MIN_GATE_RECORDS, type="integer", minimum=1, section=GATES,
                                  description="Refuse to compare (and so to promote, unless force_promote) when "
                                              "fewer validation records than this were not trained on by the "
                                              "champion."),
        "recipe": Param(defaults.RECIPE, type="string", enum=defaults.recipe_names(), section=RECIPE,
                        description="Preset: 'default' (converging recipe) or 'seed' (the tutorial's)."),
        "epochs": Param(None, type=["null", "integer"], minimum=1, maximum=500, section=RECIPE,
                        description="Override the preset's maximum epochs."),
        "batch_size": Param(None, type=["null", "integer"], minimum=1, maximum=8192, section=RECIPE,
                            description="Override the preset's batch size."),
        "learning_rate": Param(None, type=["null", "number"], exclusiveMinimum=0, maximum=1, section=RECIPE,
                               description="Override the preset's Nadam learning rate."),
        "seed": Param(defaults.SEED, type="integer", minimum=0, section=RECIPE,
                      description="Seed for weight initialisation and shuffling (same data + seed = same metrics). "
                                  "The split does not depend on it: a record's role comes from a hash of its "
                                  "vid_id."),
        "val_fraction": Param(defaults.VAL_FRACTION, type="number", exclusiveMinimum=0, exclusiveMaximum=1, section=RECIPE,
                              description="Share of the training file held out for validation (by vid_id hash; "
                                          "both classes must get validation records)."),
        "ensemble_seeds": Param(None, type=["null", "integer"], minimum=1, maximum=10, section=RECIPE,
                                description="Override the preset's number of seeds averaged into the one "
                                            "published model (1 = a single model; 3 steadies the worst seed "
                                            "at ~3x training time, see the README)."),
        "mixed_precision": Param(defaults.MIXED_PRECISION, type="boolean", section=RECIPE,
                                 description="Train in mixed float16 (useful on a GPU)."),
        "force_promote": Param(defaults.FORCE_PROMOTE, type="boolean", section=PUBLISH,
                               description="Operator override: promote even if the champion is better."),
        "require_approval": Param(defaults.REQUIRE_APPROVAL, type="boolean", section=PUBLISH,
                                  description="Wait for a human approval in the UI before promoting."),
        notify.RUN_DEADLINE_PARAM: Param(
            notify.DEFAULT_RUN_DEADLINE_MINUTES, type="number", minimum=0, section=ALERTS,
            description="Notify when the run is still unfinished this many minutes after it was queued "
                        "(0: never). A train task that no worker takes fails after the scheduler's "
                        "task_queued_timeout and notifies as a failed run."),
    },
) as dag:
    validated = step(tasks.validate, task_id="validate", retries=0)()
    prepared = step(tasks.prepare, task_id="split_and_pad")(validated)
    trained = step(tasks.train, task_id="train", queue="gpu")(prepared)
    metrics = step(tasks.evaluate, task_id="evaluate")(prepared, trained)
    gate = step(tasks.accuracy_gate, task_id="accuracy_gate", retries=0)(metrics)
    registered = step(tasks.register, task_id="register")(validated, trained, metrics)
    decided = task.branch(tasks.decide, task_id="decide",
                          on_success_callback=notify.TurkeyNotifier("challenger_lost"))(registered)
    approval = PromotionApproval(
        task_id="approve_promotion",
        subject="Promote the new turkey model?",
        body="Version {{ ti.xcom_pull(task_ids='register')['version'] }}: "
             "{{ ti.xcom_pull(task_ids='register')['reason'] }}",
        response_timeout=timedelta(days=2),
    )
    promoted = step(tasks.promote, task_id="promote", outlets=[MODEL, SUBMISSION],
                    trigger_rule="none_failed_min_one_success",
                    on_success_callback=notify.TurkeyNotifier("promoted"))(registered)
    cleaned = step(tasks.cleanup, task_id="cleanup", trigger_rule="none_failed")()
    # Extra links in the task view, to the model console pages (plugins/turkey_console.py).
    validated.operator.operator_extra_links = (ValidationReportLink(),)
    registered.operator.operator_extra_links = promoted.operator.operator_extra_links = (ModelVersionLink(),)
    gate >> registered
    decided >> [approval, promoted]
    approval >> promoted
    promoted >> cleaned
