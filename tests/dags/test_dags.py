"""DAG integrity of dags/: imports, task graph, queues, schedules, params generated from the run
configuration, notifier wiring, and a parse that imports nothing heavy."""

import copy
import subprocess
import sys

import pytest

from tests.support import REPO

REPO_DAGS = "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=REPO_DAGS)


def test_dags_import_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"turkey_training", "turkey_ingest", "turkey_consumer", "turkey_scoring"}


def test_training_graph_and_queues(dagbag):
    dag = dagbag.dags["turkey_training"]
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    expected = {
        ("validate", "split_and_pad"),
        ("validate", "register"),
        ("split_and_pad", "train"),
        ("split_and_pad", "evaluate"),
        ("train", "evaluate"),
        ("train", "register"),
        ("evaluate", "accuracy_gate"),
        ("evaluate", "register"),
        ("accuracy_gate", "register"),
        ("register", "decide"),
        ("register", "promote"),
        ("decide", "approve_promotion"),
        ("decide", "promote"),
        ("approve_promotion", "promote"),
        ("promote", "cleanup"),
        ("cleanup", "mirror_to_mlflow"),
    }
    assert edges == expected
    queues = {t.task_id: t.queue for t in dag.tasks}
    assert queues.pop("train") == "gpu"
    assert set(queues.values()) == {"default"}
    assert dag.max_active_runs == 1
    assert dag.task_dict["validate"].retries == 0 and dag.task_dict["accuracy_gate"].retries == 0
    outlets = {a.name for a in dag.task_dict["promote"].outlets}
    assert outlets == {"turkey_champion_model", "turkey_submission"}


def test_schedules(dagbag):
    from airflow.sdk import Asset, AssetAll, AssetOrTimeSchedule

    training = dagbag.dags["turkey_training"].timetable
    assert isinstance(training, AssetOrTimeSchedule)  # new data OR the weekly cron
    assert isinstance(training.asset_condition, Asset) and training.asset_condition.name == "turkey_incoming_data"
    assert "0 3 * * 1" in repr(training.timetable)
    consumer = dagbag.dags["turkey_consumer"].timetable.asset_condition
    assert isinstance(consumer, AssetAll) and [a.name for a in consumer.objects] == ["turkey_submission"]
    ingest = dagbag.dags["turkey_ingest"]
    assert {a.name for a in ingest.task_dict["check_landing"].outlets} == {"turkey_incoming_data"}
    assert {a.name for a in ingest.task_dict["check_batches"].outlets} == {"turkey_incoming_batches"}
    scoring = dagbag.dags["turkey_scoring"]  # a new batch or a new champion, never a training run
    assert {a.name for a in scoring.timetable.asset_condition.objects} == {"turkey_incoming_batches",
                                                                           "turkey_champion_model"}
    assert list(scoring.task_dict) == ["score_batches"] and scoring.max_active_runs == 1
    assert [o.name for o in scoring.task_dict["score_batches"].outlets] == ["turkey_scores_by_batch"]


@pytest.mark.parametrize(
    "conf",
    [
        {"min_val_accuracy": 1.5},
        {"min_val_accuracy": "high"},
        {"epochs": 0},
        {"batch_size": -1},
        {"recipe": "fastest"},
        {"val_fraction": 1.0},
        {"auc_tolerance": -0.1},
        {"force_promote": "yes"},
        {"train_file": ""},
    ],
)
def test_params_reject_bad_values(dagbag, conf):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags["turkey_training"].params)
    with pytest.raises((ParamValidationError, ValueError)):
        params.update(conf)  # validated on assignment
        params.validate()


def test_params_are_the_run_configuration(dagbag):
    """One Param per RunConfig field, with its default, description and trigger-form section; a value the
    Param accepts is one RunConfig accepts."""
    from ml.config import RunConfig

    params = dagbag.dags["turkey_training"].params
    assert list(params) == list(RunConfig.model_fields)
    assert params.validate() == RunConfig().params()
    for name, field in RunConfig.model_fields.items():
        p = params.get_param(name)
        assert p.description == field.description and p.schema["section"] == field.json_schema_extra["section"]
    assert params.get_param("epochs").schema["type"] == ["null", "integer"]
    overrides = {"epochs": 5, "learning_rate": 0.002, "recipe": "seed", "force_promote": True, "test_file": None}
    copied = copy.deepcopy(params)
    copied.update(overrides)
    assert RunConfig.from_params(copied.validate()) == RunConfig(**overrides)


def test_params_accept_defaults_and_overrides(dagbag):
    params = copy.deepcopy(dagbag.dags["turkey_training"].params)
    params.update({"epochs": 5, "learning_rate": 0.002, "recipe": "seed", "force_promote": True})
    resolved = params.validate()
    assert resolved["epochs"] == 5 and resolved["recipe"] == "seed"
    for name in ("train_file", "min_val_accuracy", "auc_tolerance", "seed", "require_approval"):
        assert params.get_param(name).description




def test_parsing_imports_no_tensorflow_nor_great_expectations():
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; b = DagBag(dag_folder='dags'); "
        "heavy = [m for m in ('tensorflow', 'keras', 'great_expectations', 'sklearn', 'ml.model') if m in sys.modules]; "
        "print(len(b.dags), repr(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("4 []"), last  # four DAGs, no heavy module imported while parsing


def test_dag_wires_notifiers_deadline_and_approval():
    from airflow.dag_processing.dagbag import DagBag

    from turkey_airflow.approval import PromotionApproval
    from turkey_airflow.notify import RunDeadline, TurkeyNotifier

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["turkey_training"]
    assert dag.deadline
    alerts = dag.deadline if isinstance(dag.deadline, list | tuple) else [dag.deadline]
    assert len(alerts) == 1 and isinstance(alerts[0].reference, RunDeadline)
    assert dag.params["run_deadline_minutes"] == 360
    for task in dag.tasks:  # every task notifies when it fails for good
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [task.on_failure_callback]
        assert any(isinstance(c, TurkeyNotifier) and c.event == "run_failed" for c in callbacks), task.task_id
    approval = dag.task_dict["approve_promotion"]
    assert isinstance(approval, PromotionApproval)
    assert [n.event for n in approval.notifiers] == ["approval"]
