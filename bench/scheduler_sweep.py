"""The sweep behind ``SCHEDULER_IDLE_SLEEP_S`` (scripts/distributed/topology.py): what each value of the
scheduler's idle sleep buys per run on the deployed path, and what it costs while idle.

    source scripts/env.sh && .venv/bin/python -m bench.scheduler_sweep [--values 1,0.5,0.25,0.1] [--repeats 2]

``[scheduler] scheduler_idle_sleep_time`` is how long the scheduler sleeps after a loop that found nothing
to do; between two tasks of a run it is idle, so a finished task waits about half of it (plus a loop)
before the next one is queued. Per value: a fresh deployment (:func:`bench.deployed.deployment`) with it,
the scheduler's CPU over ``--idle`` seconds with no run, then ``--repeats`` runs as in BENCHMARKS.md
section 1b (Kaggle-size demo data, default recipe, no champion). Needs PostgreSQL and Redis. Writes
bench/results/scheduler_sweep.json (commit it: section 1b shows it) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import psutil

from bench.common import KAGGLE_TEST, KAGGLE_TRAIN, ensure_demo, git_state, log, median
from bench.deployed import SWEEP_RESULT, deployment, land, render_sweep, run_deployed

SETTING = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants so far."""
    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(value: str, data: dict, repeats: int, idle_s: float) -> dict:
    """One deployment with the idle sleep at ``value``: the scheduler's idle CPU share, then the runs."""
    with deployment(**{SETTING: value}) as (topo, api, watch):
        land(topo, data)
        pid = topo.procs["scheduler"].pid
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(idle_s)
        idle = (cpu_seconds(pid) - before) / (time.monotonic() - t0)
        runs = [run_deployed(topo, api, watch, {}) for _ in range(repeats)]
    log(f"{SETTING}={value}: median wall {median([r['wall'] for r in runs]):.1f}s, idle CPU {100 * idle:.1f}%")
    return {"value": value, "idle_scheduler_cpu_share": idle, "walls": [r["wall"] for r in runs],
            "scheduling": [r["parts"]["scheduling"] for r in runs], "tasks": len(runs[0]["tasks"])}


def main(argv=None) -> int:
    """Run the sweep; write bench/results/scheduler_sweep.json and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", default="1,0.5,0.25,0.1", help="idle sleep values in seconds, comma-separated")
    ap.add_argument("--repeats", type=int, default=2, help="DAG runs per value")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of idle scheduler CPU measured per value")
    a = ap.parse_args(argv)
    data = ensure_demo(KAGGLE_TRAIN, KAGGLE_TEST)
    results = [measure(v.strip(), data, a.repeats, a.idle) for v in a.values.split(",") if v.strip()]
    args = " ".join(argv if argv is not None else sys.argv[1:])
    meta = {"command": f"python -m bench.scheduler_sweep {args}".strip(), "git": git_state(), "repeats": a.repeats,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "idle_seconds": a.idle}
    SWEEP_RESULT.parent.mkdir(parents=True, exist_ok=True)
    SWEEP_RESULT.write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    print(render_sweep(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
