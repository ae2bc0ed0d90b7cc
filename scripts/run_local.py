"""``make run`` / ``make score``: one whole turkey_training (or, with ``--dag turkey_scoring``, one scoring)
run through Airflow on the embedded default (SQLite, local files).

Generates demo data when the landing folder has none, migrates the metadata DB, runs ``airflow dags test
turkey_training`` in-process through ``scripts/airflow_fast_exit.py`` (its own process group; Ctrl-C or
SIGTERM stops it, SIGKILL after a grace period), shows the pipeline's own log lines as they come (the full
log goes to ``$AIRFLOW_HOME/last-run.log``), then prints a summary of the champion from the registry.
Exit status: the run's, or 1 when no champion was published.

    source scripts/env.sh && python -m scripts.run_local        # TURKEY_CONF='{"epochs": 3}' sets the run conf
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from scripts.procs import interrupt_on_sigterm, spawn, stop_all

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0
SHOWN = re.compile(r"\[ml\.|DagRun Finished|new_state=(failed|up_for_retry)|Traceback|AirflowFailException")
WIDTH = 300


def shown(line: str) -> str | None:
    """The console form of one ``dags test`` log line, or None when it is not one to show: the pipeline's
    own lines, the run's end, failures; without the timestamp and the source location, at most 300 chars."""
    if not SHOWN.search(line):
        return None
    line = re.sub(r" +loc=[^ ]+.*$", "", line)
    line = re.sub(r"^[0-9TZ:.-]+ ", "", line)
    line = re.sub(r"^\[(info|warning|error) *\] ", r"\1: ", line)
    return line[:WIDTH]


def run_dag(conf: str, log_path: Path, dag_id: str = "turkey_training") -> int:
    """``airflow db migrate`` then ``airflow dags test DAG --conf CONF``, in one process that exits as soon as
    the run is recorded; its output to ``log_path`` and the lines :func:`shown` keeps to stdout. Returns its
    exit status."""
    proc = spawn(
        [sys.executable, REPO / "scripts" / "airflow_fast_exit.py", "db", "migrate", ":::", "dags", "test", dag_id,
         "--conf", conf],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        with open(log_path, "wb") as full:
            for raw in proc.stdout:
                full.write(raw)
                if (line := shown(raw.decode("utf-8", "replace").rstrip("\n"))) is not None:
                    print(line, flush=True)
        return proc.wait()
    finally:
        stop_all([proc], grace=STOP_GRACE_S)


def summary(started: str) -> int:
    """Print the champion (version, figures, submission) and, when this run's version was registered but not
    promoted, the gate's decision. 1 when there is no champion."""
    from ml.registry import Registry
    from ml.registry.views import describe

    reg = Registry()
    if reg.champion() is None:
        print("==> no champion model published (see the log above)")
        return 1
    info = describe(reg, "champion")
    latest = describe(reg, "latest")["manifest"]
    m = info["metrics"]
    if latest["version"] != info["version"] and latest.get("created_at", "") >= started:  # this run's version lost
        gate = latest.get("gate") or {}
        print(f"==> this run's version {latest['version']} was registered, not promoted: {gate.get('decision')}")
    print(f"==> champion model: {info['model']}")
    print(f"    version {info['version']}: validation accuracy {m['val_accuracy']:.4f}, ROC AUC {m['val_auc']:.4f} "
          f"(logistic baseline AUC {m['baseline_logreg']['val_auc']:.4f})")
    print(f"==> submission:     {reg.submission_path()}")
    print("    all versions:   turkey models list")
    return 0


def scores_summary() -> int:
    """Print each batch's published scores (version, rows, file) and the submission. 1 when none."""
    from ml.registry import Registry
    from ml.scoring.store import ScoreStore

    reg = Registry()
    store = ScoreStore(reg)
    published = [latest for b in store.batches() if (latest := store.latest(b))]
    if not published:
        why = "no champion yet: run `make run` first" if reg.champion_version() is None else "see the log above"
        print(f"==> no published scores ({why})")
        return 1
    for r in published:
        print(f"==> scores of {r['batch']:<16} {r['rows']:>6} rows by {r['version']}: "
              f"{reg.display(store.path(r['batch'], 'latest.csv'))}")
    print(f"==> submission:     {reg.submission_path()}")
    print("    all batches:    turkey scores list")
    return 0


def main() -> int:
    """Data, migrate, run, summary; the exit status as the module docstring says."""
    import argparse

    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--dag", default="turkey_training", choices=["turkey_training", "turkey_scoring"])
    dag_id = args.parse_args().dag
    interrupt_on_sigterm()
    landing = Path(os.environ["TURKEY_DATA_ROOT"]) / "landing"
    if dag_id == "turkey_training" and not ((landing / "train.json").is_file() and (landing / "test.json").is_file()):
        print(f"==> no train.json/test.json in {landing}: generating demo data", flush=True)
        if rc := subprocess.run(["turkey", "demo-data", "--out", str(landing)]).returncode:
            return rc
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    print(f"==> Airflow metadata DB: {os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}", flush=True)
    conf = os.environ.get("TURKEY_CONF") or "{}"
    print(f"==> airflow dags test {dag_id} (conf: {conf})", flush=True)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    run_log = home / "last-run.log"
    try:
        status = run_dag(conf, run_log, dag_id)
    except KeyboardInterrupt:
        print("==> interrupted", file=sys.stderr)
        return 130
    print(f"==> full log: {run_log}")
    return (summary(started) if dag_id == "turkey_training" else scores_summary()) or status


if __name__ == "__main__":
    sys.exit(main())
