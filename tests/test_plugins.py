"""The Airflow glue outside the training tasks: ingest change detection and the example consumer."""

import os
import types
from collections import defaultdict

import pytest

from ml.demo import generate


class FakeEvents(defaultdict):
    def __init__(self):
        super().__init__(lambda: types.SimpleNamespace(extra=None))


def test_ingest_emits_only_when_the_landing_content_changes(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    from turkey_airflow import ingest
    from turkey_airflow.assets import INCOMING_DATA

    monkeypatch.setenv("TURKEY_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    ctx = {"outlet_events": FakeEvents()}
    monkeypatch.setattr(ingest, "get_current_context", lambda: ctx)

    with pytest.raises(AirflowSkipException, match="waiting for input"):
        ingest.check_landing()
    generate(tmp_path / "data" / "landing", train_size=20, test_size=5, seed=1)
    first = ingest.check_landing()
    assert ctx["outlet_events"][INCOMING_DATA].extra["digests"] == first
    ctx["outlet_events"] = FakeEvents()
    with pytest.raises(AirflowSkipException, match="unchanged"):
        ingest.check_landing()  # same content: no event
    generate(tmp_path / "data" / "landing", train_size=20, test_size=5, seed=2)
    assert ingest.check_landing() != first


def test_ingest_skips_data_a_training_run_already_trained_on(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowSkipException

    from ml import ingest_state
    from ml.registry import sha256_file
    from turkey_airflow import ingest

    monkeypatch.setenv("TURKEY_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    ctx = {"outlet_events": FakeEvents()}
    monkeypatch.setattr(ingest, "get_current_context", lambda: ctx)
    landing = tmp_path / "data" / "landing"
    generate(landing, train_size=20, test_size=5, seed=3)
    digests = {n: sha256_file(landing / n) for n in ("train.json", "test.json")}
    ingest_state.record_trained(digests, run_id="manual__1", version="v1")  # what `make run` does
    with pytest.raises(AirflowSkipException, match=r"already trained on by run manual__1 \(version v1\)"):
        ingest.check_landing()
    assert not ctx["outlet_events"]  # no event
    generate(landing, train_size=21, test_size=5, seed=3)  # new data: announced once
    assert ingest.check_landing() != digests
    assert ingest_state.load()["trained"][0]["digests"] == digests


def test_consumer_reads_event_extra_and_csv(tmp_path, monkeypatch):
    from turkey_airflow import consumer
    from turkey_airflow.assets import SUBMISSION

    csv_path = tmp_path / "latest.csv"
    csv_path.write_text("vid_id,is_turkey\na,0.9\nb,0.2\nc,0.7\n")
    event = types.SimpleNamespace(extra={"version": "v1", "path": str(csv_path), "metrics": {"val_auc": 0.97}})
    monkeypatch.setattr(consumer, "get_current_context", lambda: {"triggering_asset_events": {SUBMISSION: [event]}})
    summary = consumer.summarise_submission()
    assert summary == {
        "version": "v1",
        "rows": 3,
        "predicted_turkeys": 2,
        "mean_probability": 0.6,
        "metrics": {"val_auc": 0.97},
    }


@pytest.mark.parametrize(
    ("promote", "require_approval", "expected"),
    [(True, False, ["promote"]), (True, True, ["approve_promotion"]), (False, False, []), (False, True, [])],
)
def test_decide_branch(monkeypatch, promote, require_approval, expected):
    from turkey_airflow import tasks

    monkeypatch.setattr(tasks, "get_current_context", lambda: {"params": {"require_approval": require_approval}})
    assert tasks.decide({"promote": promote, "version": "v1", "reason": "r"}) == expected


def test_retried_register_and_promote_tasks_are_idempotent(tmp_path, monkeypatch):
    """A retried/cleared publish task of the same run writes no second version and no second promotion."""
    import json
    from datetime import UTC, datetime

    from ml.registry import VERSION_FILES, Registry
    from turkey_airflow import tasks
    from turkey_airflow.assets import MODEL, SUBMISSION

    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    cand = tmp_path / "candidate"
    cand.mkdir()
    for f in VERSION_FILES:
        (cand / f).write_text(f"{f}\n")
    (cand / "metrics.json").write_text(json.dumps({"val_accuracy": 0.9, "val_auc": 0.95}))
    run = types.SimpleNamespace(
        dag_id="turkey_training",
        run_id="manual__1",
        run_after=datetime(2026, 11, 2, tzinfo=UTC),
        start_date=datetime(2026, 11, 2, tzinfo=UTC),
    )
    params = {
        "auc_tolerance": 0.005,
        "force_promote": False,
        "train_file": "landing/train.json",
        "test_file": "landing/test.json",
        "min_gate_records": 100,
        "val_fraction": 0.25,
    }
    ctx = {"params": params, "dag_run": run, "outlet_events": FakeEvents()}
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)
    validated = {"train_sha256": "a" * 64, "test_sha256": "b" * 64, "report_html": {}}
    trained = {"candidate_dir": str(cand), "device": "CPU", "champion_version": None, "champion_problem": None}
    metrics = {"val_accuracy": 0.9, "val_auc": 0.95}

    first = tasks.register(validated, trained, metrics)
    again = tasks.register(validated, trained, metrics)
    assert first["created"] and not again["created"] and first["version"] == again["version"]
    tasks.promote(first)
    tasks.promote(again)
    reg = Registry()
    assert reg.versions() == [first["version"]] and reg.champion_version() == first["version"]
    assert [e["action"] for e in reg.audit()] == ["promote"]
    manifest = reg.manifest(first["version"])
    from ml import ingest_state

    trained = ingest_state.load()["trained"]  # the ingest check will not announce these inputs again
    assert [(e["digests"], e["version"]) for e in trained] == [
        ({"train.json": "a" * 64, "test.json": "b" * 64}, first["version"])
    ]
    assert manifest["inputs"]["train_sha256"] == "a" * 64 and manifest["gate"]["decision"] == "promote"
    events = ctx["outlet_events"]
    assert events[MODEL].extra["version"] == events[SUBMISSION].extra["version"] == first["version"]
    assert events[SUBMISSION].extra["path"] == reg.submission_path()


def test_promote_task_refuses_to_overwrite_a_champion_changed_after_the_gate(tmp_path, monkeypatch):
    """An operator's rollback made while the run trained or waited for approval is not silently replaced."""
    import json

    from airflow.sdk.exceptions import AirflowFailException

    from ml.registry import VERSION_FILES, Registry
    from turkey_airflow import tasks

    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    reg = Registry()
    for v in ("v1", "v2", "v3"):
        cand = tmp_path / f"cand-{v}"
        cand.mkdir()
        for f in VERSION_FILES:
            (cand / f).write_text(f"{v}:{f}\n")
        (cand / "metrics.json").write_text(json.dumps({"val_accuracy": 0.9, "val_auc": 0.95}))
        reg.register(v, cand, {"run_id": f"r-{v}"})
    reg.promote("v2", reason="pipeline")
    run = types.SimpleNamespace(run_id="manual__3")
    ctx = {"params": {"require_approval": False}, "dag_run": run, "outlet_events": FakeEvents()}
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)
    registered = {
        "promote": True,
        "version": "v3",
        "reason": "better than v2",
        "force_promote": False,
        "champion_version": "v2",
    }  # what the gate compared with
    reg.rollback("v1", user="ops", reason="v2 misbehaves")  # after the gate, before promote
    with pytest.raises(
        AirflowFailException,
        match=r"^the champion changed since it was compared: expected v2, "
        r"found v1; v3 not promoted",
    ) as exc:
        tasks.promote(registered)
    assert "\n" not in str(exc.value)
    assert reg.champion_version() == "v1" and [e["action"] for e in reg.audit()] == ["promote", "rollback"]
    assert tasks.promote({**registered, "champion_version": "v1"})["previous"] == "v1"  # a fresh comparison
    assert tasks.promote({**registered, "champion_version": "v1"})["version"] == "v3"  # retried: no error
    assert [e["action"] for e in reg.audit()] == ["promote", "rollback", "promote"]
    reg.rollback("v1", user="ops", reason="again")
    assert tasks.promote({**registered, "force_promote": True})["previous"] == "v1"  # forced: no comparison


IMPORT_PROBE = """
import json, logging, os, pkgutil, importlib, sys
from airflow.dag_processing.dagbag import DagBag
import turkey_airflow
env = dict(os.environ)
names = ["ml", "turkey_airflow", *logging.root.manager.loggerDict]
levels = {n: logging.getLogger(n).level for n in names}
modules = [m.name for m in pkgutil.walk_packages(turkey_airflow.__path__, "turkey_airflow.")]
for name in modules:
    importlib.import_module(name)
bag = DagBag(dag_folder="dags")
changed_env = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
changed_levels = sorted(n for n in names if logging.getLogger(n).level != levels[n])
print(json.dumps({"modules": modules, "dags": sorted(bag.dags), "errors": list(bag.import_errors),
                  "env": changed_env, "levels": changed_levels}))
"""


def test_importing_the_glue_and_the_dags_changes_no_environment_and_no_logger_level():
    """Parsing (the DAG processor) runs no task set-up: os.environ and logger levels stay as they were."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("GX_ANALYTICS_ENABLED", "TF_CPP_MIN_LOG_LEVEL")}
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert "turkey_airflow.tasks" in probe["modules"] and "turkey_airflow.notify" in probe["modules"]
    assert probe["dags"] == ["turkey_consumer", "turkey_ingest", "turkey_training"] and not probe["errors"]
    assert probe["env"] == [] and probe["levels"] == []


def test_task_bodies_set_the_process_up_and_log_their_markers(monkeypatch, caplog):
    """A task body, when it runs: library environment defaults, INFO for ml and the glue, and the
    ml.task_marker start/end lines under the running task's id (finished, or failed when it raised)."""
    import logging

    from airflow.sdk.exceptions import AirflowFailException

    from ml import task_marker
    from turkey_airflow import tasks

    monkeypatch.delenv("GX_ANALYTICS_ENABLED", raising=False)
    for name in ("ml", "turkey_airflow"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    ctx = {"params": {"min_val_accuracy": 0.8}, "ti": types.SimpleNamespace(task_id="accuracy_gate")}
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)
    assert tasks.accuracy_gate({"val_accuracy": 0.9, "n_val": 10})["passed"]
    with pytest.raises(AirflowFailException, match="below the threshold"):
        tasks.accuracy_gate({"val_accuracy": 0.5, "n_val": 10})
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert logging.getLogger("turkey_airflow").level == logging.getLogger("ml").level == logging.INFO
    marks = [task_marker.parse(r.getMessage()) for r in caplog.records if r.name == "ml.task_marker"]
    assert [(m["task"], m["event"]) for m in marks] == [
        ("accuracy_gate", "started"), ("accuracy_gate", "finished"), ("accuracy_gate", "started"),
        ("accuracy_gate", "failed"),
    ]
    assert all(m["seconds"] >= 0 and m["rss_mib"] > 0 for m in marks[1::2])
