"""turkey_airflow.consumer: the example downstream task reads the event extra and the CSV."""

import types


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
