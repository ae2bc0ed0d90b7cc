"""scripts/run_local.py (make run): what it shows of the run's log."""



def test_make_run_shows_the_pipeline_lines_without_timestamp_or_location():
    from scripts.run_local import shown

    line = (
        "2026-11-28T07:58:20.123456Z [info     ] trained 19 epoch(s) in 25.9s   [ml.pipeline] "
        "loc=pipeline.py:120 extra=1"
    )
    assert shown(line) == "info: trained 19 epoch(s) in 25.9s   [ml.pipeline]"
    assert shown("2026-11-28T07:58:20Z [info     ] Filling up the DagBag [airflow.models.dagbag]") is None
    assert shown("x" * 400 + " Traceback") == "x" * 300
