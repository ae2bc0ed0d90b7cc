"""One process per harness step: ``airflow`` CLI commands run in-process, then the run's result read from the
metadata DB, then an exit without the interpreter's teardown (as ``make run`` does through
``scripts/airflow_fast_exit.py``). Saves a second interpreter and Airflow import per step.

    python -m tests.support.airflow_run '{"commands": [["dags", "test", "turkey_training", "--conf", "{}"]],
                                          "result_of": "turkey_training"}'

Prints ``COMMAND <status>`` per command and ``RESULT <json>`` (see :func:`result`); exit status 0 unless a
command could not run at all. Coverage data (``make test``) is saved by coverage's own ``_exit`` patch.
"""

from __future__ import annotations

import json
import logging
import os
import sys


def result(dag_id: str) -> dict:
    """The latest run of ``dag_id``: state and task states, all asset events (name, extra), all runs
    (dag_id, run_id, state), the asset-triggered runs Airflow has queued (asset name, target dag)."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        runs = s.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id).all()
        run = runs[-1] if runs else None
        tis = {} if run is None else {
            ti.task_id: str(ti.state)
            for ti in s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id, TaskInstance.dag_id == dag_id)
        }
        events = [(e.asset.name, e.extra) for e in
                  s.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).order_by(AssetEvent.id)]
        all_runs = [(r.dag_id, r.run_id, str(r.state)) for r in s.query(DagRun).order_by(DagRun.id)]
        queued = sorted((q.asset.name, q.target_dag_id) for q in s.query(AssetDagRunQueue))
    return {"state": str(run.state) if run else None, "tasks": tis, "events": events, "runs": len(runs),
            "all_runs": all_runs, "queued": queued, "run_id": run.run_id if run else None}


def main(spec: dict) -> int:
    """Run ``spec["commands"]`` (each the arguments of one ``airflow`` command), then print the result of
    ``spec["result_of"]`` (a dag id) when given."""
    from scripts.airflow_fast_exit import main as airflow
    from scripts.airflow_fast_exit import stop_listeners

    for command in spec.get("commands", []):
        status = airflow(command)
        print(f"COMMAND {status} {json.dumps(command)}", flush=True)
    if spec.get("result_of"):
        print("RESULT " + json.dumps(result(spec["result_of"]), default=str), flush=True)
    stop_listeners()
    return 0


if __name__ == "__main__":
    code = main(json.loads(sys.argv[1]))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
