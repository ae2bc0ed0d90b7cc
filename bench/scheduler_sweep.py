"""Sweep of the scheduler's idle sleep on the deployed path: what each value buys per run, and what it costs idle.

    source scripts/env.sh && .venv/bin/python -m bench.scheduler_sweep            # values 1,0.5,0.25,0.1
    source scripts/env.sh && .venv/bin/python -m bench.scheduler_sweep --values 1,0.25 --repeats 1

``[scheduler] scheduler_idle_sleep_time`` is how long the scheduler sleeps after a loop that found nothing
to do (Airflow's default: 1 s). Between two tasks of a run the scheduler is idle, so a task that ends
waits, on average, about half of it (plus one loop) before the next task is queued: this is most of the
*scheduling* row of BENCHMARKS.md section 1b. For each value the sweep starts ``make test-distributed``'s
deployment (:class:`scripts.distributed.topology.CeleryTopology`) with that value, measures the
scheduler's CPU over ``--idle`` seconds with no run (its cost when nothing happens), then triggers the
DAG ``--repeats`` times as section 1b does (:func:`bench.deployed.run_deployed`: default recipe, demo data
at Kaggle size, no champion) and reports the median wall and the summed scheduling delay. The deployment
default (``scripts/distributed/topology.py`` and ``docker-compose.yaml``) is the value this sweep chose.
Needs PostgreSQL and Redis. Writes bench/out/scheduler-sweep.json (section 1b of ``make bench`` shows it
when present) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KAGGLE_TEST, KAGGLE_TRAIN, OUT, ensure_demo, git_state, md_table, median  # noqa: E402
from bench.deployed import SWEEP_RESULT, deployment, land, run_deployed  # noqa: E402

log = logging.getLogger(__name__)
SETTING = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, as they are now."""
    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure(value: str, data: dict, repeats: int, idle_s: float) -> dict:
    """One deployment with the scheduler's idle sleep at ``value``: idle scheduler CPU, then the runs."""
    with deployment(**{SETTING: value}) as (topo, api):
        land(topo, data)
        scheduler = topo.procs["scheduler"].pid
        before, t = _cpu_seconds(scheduler), time.monotonic()
        time.sleep(idle_s)
        idle_cpu = (_cpu_seconds(scheduler) - before) / (time.monotonic() - t)
        runs = [run_deployed(topo, api, {}, i) for i in range(repeats)]
    return {
        "value": value,
        "idle_scheduler_cpu_share": idle_cpu,
        "walls": [r["wall"] for r in runs],
        "scheduling": [r["parts"]["scheduling"] for r in runs],
        "tasks": len(runs[0]["tasks"]) if runs else 0,
    }


def render(results: list[dict]) -> str:
    """The sweep as a Markdown table, one row per value."""
    rows = [
        [
            f"`{r['value']}`",
            ", ".join(f"{w:.1f}" for w in r["walls"]),
            f"{median(r['walls']):.1f}",
            f"{median(r['scheduling']):.2f}",
            f"{median(r['scheduling']) / max(r['tasks'], 1):.2f}",
            f"{100 * r['idle_scheduler_cpu_share']:.1f}%",
        ]
        for r in results
    ]
    return md_table(
        ["idle sleep (s)", "run walls (s)", "median wall (s)", "scheduling, sum (s)", "per task (s)",
         "scheduler CPU while idle (of one core)"],
        rows,
        align="lrrrrr",
    )


def main(argv=None) -> int:
    """Run the sweep; print the table and write bench/out/scheduler-sweep.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", default="1,0.5,0.25,0.1", help="idle sleep values in seconds, comma-separated")
    ap.add_argument("--repeats", type=int, default=2, help="DAG runs per value (default 2)")
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle scheduler CPU measured per value")
    a = ap.parse_args(argv)
    logging.basicConfig(format="[sweep %(asctime)s] %(message)s", datefmt="%H:%M:%S", level=logging.INFO,
                        stream=sys.stdout)
    data = ensure_demo("kaggle-1x", KAGGLE_TRAIN, KAGGLE_TEST, seed=0, workers=2)
    results = []
    for value in a.values.split(","):
        log.info("%s=%s", SETTING, value)
        results.append(measure(value.strip(), data, a.repeats, a.idle))
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "`source scripts/env.sh && .venv/bin/python -m bench.scheduler_sweep "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git_state(),
        "repeats": a.repeats,
        "idle_seconds": a.idle,
    }
    SWEEP_RESULT.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
