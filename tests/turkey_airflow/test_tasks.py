"""The training task bodies (turkey_airflow.tasks): set-up, error mapping, idempotent register/promote and the
compare-and-set of promote; importing the glue changes nothing."""

import os
import types
from pathlib import Path

import pytest

from tests.support import FakeEvents


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
        ({"train.json": "a" * 64}, first["version"])  # the labelled data: a new test file is scored, not trained
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
import json, logging, os, pkgutil, importlib, importlib.util, sys
from airflow.dag_processing.dagbag import DagBag
import turkey_airflow
env = dict(os.environ)
names = ["ml", "turkey_airflow", *logging.root.manager.loggerDict]
levels = {n: logging.getLogger(n).level for n in names}
modules = [m.name for m in pkgutil.walk_packages(turkey_airflow.__path__, "turkey_airflow.")]
# the OpenLineage extractor needs the lineage extra (make install-mlflow); tests/integrations imports it
for name in [m for m in modules if m != "turkey_airflow.lineage_extractor" or importlib.util.find_spec("openlineage")]:
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
    assert probe["dags"] == ["turkey_consumer", "turkey_ingest", "turkey_scoring", "turkey_training"]
    assert not probe["errors"]
    assert probe["env"] == [] and probe["levels"] == []


def test_task_bodies_set_the_process_up_and_map_turkey_errors(monkeypatch):
    """A task body, when it runs: library environment defaults, INFO for ml and the glue; a TurkeyError is an
    AirflowFailException with its one line (no retries)."""
    import logging

    from airflow.sdk.exceptions import AirflowFailException

    from turkey_airflow import tasks

    monkeypatch.delenv("GX_ANALYTICS_ENABLED", raising=False)
    for name in ("ml", "turkey_airflow"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    ctx = {"params": {"min_val_accuracy": 0.8}, "ti": types.SimpleNamespace(task_id="accuracy_gate")}
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)
    assert tasks.accuracy_gate({"val_accuracy": 0.9, "n_val": 10})["passed"]
    with pytest.raises(AirflowFailException, match="^validation accuracy 0.5000 on 10 validation records is below"):
        tasks.accuracy_gate({"val_accuracy": 0.5, "n_val": 10})
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert logging.getLogger("turkey_airflow").level == logging.getLogger("ml").level == logging.INFO
    ctx["params"] = {"min_val_accuracy": 2}  # a bad run setting is one line too
    with pytest.raises(AirflowFailException, match=r"^run setting min_val_accuracy=2: .*less than or equal to 1"):
        tasks.accuracy_gate({"val_accuracy": 0.9, "n_val": 10})


def test_tasks_and_cli_turn_a_raw_environment_oserror_into_one_line(capsys, monkeypatch):
    """A disk-full error raised inside a library we do not wrap (e.g. GX writing Data Docs)."""
    import errno

    from airflow.sdk.exceptions import AirflowFailException

    from ml import cli
    from turkey_airflow.tasks import task_body

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "/x/data-docs/index.html")

    with pytest.raises(AirflowFailException, match="^disk full while writing /x/data-docs/index.html: free space"):
        task_body(full)()
    with pytest.raises(FileNotFoundError):  # not an environment fault: unchanged
        task_body(lambda: Path("/nonexistent/x").read_text())()
    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["demo-data"].set_defaults(func=lambda a: full())
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["demo-data", "--out", "/tmp/unused"]) == 1
    assert (
        capsys.readouterr().err == "error: disk full while writing /x/data-docs/index.html: free space on that "
        "filesystem, then clear the task\n"
    )


@pytest.mark.slow
def test_the_task_bodies_chain_from_validate_to_cleanup_against_a_champion(trained, demo_dir, tmp_path, monkeypatch):
    """The bodies in DAG order on the demo data, in this process, against the shared champion: the candidate
    is scored on records neither trained on, registered with the gate's decision, promoted only if the gate
    says so, and the run folder is cleaned; below the accuracy floor the gate task fails with one line."""
    import shutil
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import AirflowFailException

    from ml.registry import Registry
    from tests.conftest import copy_tree
    from turkey_airflow import tasks

    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    for name in ("train.json", "test.json"):
        shutil.copy(demo_dir / name, landing / name)
    art = copy_tree(trained.registry, tmp_path / "art")
    monkeypatch.setenv("TURKEY_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(art))
    monkeypatch.delenv("TURKEY_REGISTRY_URL", raising=False)
    run = types.SimpleNamespace(dag_id="turkey_training", run_id="manual__chain", start_date=datetime(2026, 12, 1, tzinfo=UTC),
                                run_after=None)
    params = {"epochs": 1, "recipe": "seed", "min_records": 50, "min_gate_records": 30, "min_val_accuracy": 0.0}
    ctx = {"params": params, "dag_run": run, "outlet_events": FakeEvents(), "ti": types.SimpleNamespace(task_id="x")}
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)

    validated = tasks.validate()
    prepared = tasks.prepare(validated)
    trained_run = tasks.train(prepared)
    assert trained_run["champion_version"] == trained.version and trained_run["champion_problem"] is None
    metrics = tasks.evaluate(prepared, trained_run)
    cmp = metrics["champion_comparison"]
    assert cmp["n"] + cmp["n_excluded_champion_trained"] == metrics["n_val"] and cmp["n"] >= 30
    assert tasks.accuracy_gate(metrics)["passed"]
    registered = tasks.register(validated, trained_run, metrics)
    reg = Registry()
    assert reg.manifest(registered["version"])["gate"]["decision"] == registered["decision"]
    assert tasks.decide(registered) == (["promote"] if registered["promote"] else [])
    if registered["promote"]:
        tasks.promote(registered)
    assert reg.champion_version() == (registered["version"] if registered["promote"] else trained.version)
    done = tasks.cleanup()
    run_folder = Path(done["run_dir"])
    assert not list(run_folder.glob("*.npz")) and not (run_folder / "candidate").exists()
    assert (run_folder / "validation").is_dir()
    params["min_val_accuracy"] = 0.999
    with pytest.raises(AirflowFailException, match="^validation accuracy .* below the threshold min_val_accuracy=0.9990"):
        tasks.accuracy_gate(metrics)
