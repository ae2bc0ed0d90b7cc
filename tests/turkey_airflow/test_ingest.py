"""turkey_airflow.ingest: the landing check announces only data no run trained on and not announced before."""


import pytest

from ml.demo import generate
from tests.support import FakeEvents


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


def test_a_new_test_file_is_not_training_data_and_new_batches_are_announced_once(tmp_path, monkeypatch):
    """Issue 21: only train.json starts training; a changed test.json or a new batch file is announced to
    scoring (turkey_incoming_batches), once, until scores of that content are published."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ml import ingest_state
    from ml.demo import generate_batch
    from ml.registry import sha256_file
    from turkey_airflow import ingest
    from turkey_airflow.assets import INCOMING_BATCHES

    monkeypatch.setenv("TURKEY_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    ctx = {"outlet_events": FakeEvents()}
    monkeypatch.setattr(ingest, "get_current_context", lambda: ctx)
    landing = tmp_path / "data" / "landing"
    generate(landing, train_size=20, test_size=5, seed=3)
    ingest_state.record_trained({"train.json": sha256_file(landing / "train.json")}, run_id="r", version="v1")
    generate(landing / "other", train_size=20, test_size=7, seed=9)
    (landing / "other" / "test.json").replace(landing / "test.json")  # only the test file changes
    with pytest.raises(AirflowSkipException, match="already trained on"):
        ingest.check_landing()  # no training for a new test file
    assert set(ingest.check_batches()) == {"kaggle-test"}
    generate_batch(landing / "batches" / "week-1.json", 10, seed=1)
    ctx["outlet_events"] = FakeEvents()
    assert set(ingest.check_batches()) == {"week-1"}  # the test file was announced already
    assert set(ctx["outlet_events"][INCOMING_BATCHES].extra["batches"]) == {"week-1"}
    with pytest.raises(AirflowSkipException, match="no unscored batch"):
        ingest.check_batches()
