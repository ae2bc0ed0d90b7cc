"""DAG integrity: imports, task graph, queues, schedules, params, and a cheap parse."""

import copy
import subprocess
import sys

import pytest

from ml.config import resolve_input
from ml.errors import TurkeyError

REPO_DAGS = "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=REPO_DAGS)


def test_dags_import_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {"turkey_training", "turkey_ingest", "turkey_consumer"}


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


def test_params_accept_defaults_and_overrides(dagbag):
    params = copy.deepcopy(dagbag.dags["turkey_training"].params)
    params.update({"epochs": 5, "learning_rate": 0.002, "recipe": "seed", "force_promote": True})
    resolved = params.validate()
    assert resolved["epochs"] == 5 and resolved["recipe"] == "seed"
    for name in ("train_file", "min_val_accuracy", "auc_tolerance", "seed", "require_approval"):
        assert params.get_param(name).description


def test_input_paths_may_not_escape_the_data_root(tmp_path):
    assert resolve_input("landing/train.json", tmp_path) == tmp_path / "landing" / "train.json"
    for bad in ("../etc/passwd", "/etc/passwd", "landing/../../x.json", ""):
        with pytest.raises(TurkeyError):
            resolve_input(bad, tmp_path)


def test_parsing_is_cheap_and_imports_no_tensorflow():
    code = (
        "import sys, time; t = time.perf_counter(); "
        "from airflow.dag_processing.dagbag import DagBag; "
        "t1 = time.perf_counter(); b = DagBag(dag_folder='dags'); t2 = time.perf_counter(); "
        "heavy = [m for m in ('tensorflow', 'keras', 'great_expectations', 'sklearn', 'ml.model') if m in sys.modules]; "
        "print(len(b.dags), repr(heavy), round(t2 - t1, 3))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("3 []"), last  # three DAGs, no heavy module imported while parsing
    assert float(last.split()[-1]) < 2.0, f"parsing the DAG folder took {last.split()[-1]} s"
