"""scripts/airflow_fast_exit.py (used by `make run`): same output and exit status as the airflow CLI."""

import subprocess
import sys

from tests.support import REPO
from tests.support.airflow_harness import Env

SCRIPT = REPO / "scripts" / "airflow_fast_exit.py"


def test_fast_exit_runs_the_cli_and_keeps_its_exit_status(tmp_path):
    env = Env(tmp_path)
    ok = subprocess.run([sys.executable, str(SCRIPT), "version"], env=env.env, capture_output=True, text=True)
    ref = subprocess.run(["airflow", "version"], env=env.env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == ref.stdout.strip() != ""
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "dags", "test", "no_such_dag"], env=env.env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "no_such_dag" in bad.stderr + bad.stdout


def test_make_run_shows_the_pipeline_lines_without_timestamp_or_location():
    from scripts.run_local import shown

    line = (
        "2026-11-28T07:58:20.123456Z [info     ] trained 19 epoch(s) in 25.9s   [ml.pipeline] "
        "loc=pipeline.py:120 extra=1"
    )
    assert shown(line) == "info: trained 19 epoch(s) in 25.9s   [ml.pipeline]"
    assert shown("2026-11-28T07:58:20Z [info     ] Filling up the DagBag [airflow.models.dagbag]") is None
    assert shown("x" * 400 + " Traceback") == "x" * 300
