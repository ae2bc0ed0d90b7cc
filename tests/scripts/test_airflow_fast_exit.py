"""scripts/airflow_fast_exit.py (used by `make run`): same output and exit status as the airflow CLI."""

import subprocess
import sys

from tests.support import REPO
from tests.support.airflow_harness import Env

SCRIPT = REPO / "scripts" / "airflow_fast_exit.py"


def test_fast_exit_runs_the_cli_and_keeps_its_exit_status(tmp_path):
    from importlib.metadata import version

    env = Env(tmp_path, migrate=False)
    ok = subprocess.run([sys.executable, str(SCRIPT), "version"], env=env.env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == version("apache-airflow")
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "dags", "test", "no_such_dag"], env=env.env, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "airflow db migrate" in bad.stderr + bad.stdout  # the CLI's own failure, kept


