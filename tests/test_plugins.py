"""The Airflow glue outside the training tasks: ingest change detection and the example consumer."""

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
    trained = {"candidate_dir": str(cand), "device": "CPU"}
    metrics = {"val_accuracy": 0.9, "val_auc": 0.95, "champion_version": None}

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
