"""Deployed path: ``turkey_training`` on the CeleryExecutor deployment vs the bare script, same work.

The deployment is ``make test-distributed``'s (:class:`scripts.distributed.topology.CeleryTopology`: its own
PostgreSQL database and Redis index, api-server, scheduler, dag-processor, triggerer, a default-queue and a
gpu-queue Celery worker, all processes on this machine, all on 127.0.0.1). It is started once; once the
scheduler reports healthy, the DAG is parsed and both workers are ready, the DAG is triggered N times
through the REST API, one run after another, each on an emptied artifacts root (no champion, like
``make bench``'s overhead section). The bare reference, ``bench/bare_pipeline.py``, runs N times in a fresh
process each, before the deployment starts (so the idle Airflow components do not share its 2 cores), on
the same data, recipe and split seed.

What is measured, per deployed run:

* wall: trigger (the moment before ``POST /api/v2/dags/turkey_training/dagRuns``) -> the run's ``end_date``;
* per task, from the task instance (``queued_dttm``, ``start_date``, ``end_date`` as the REST API returns
  them): *scheduling* = the previous task's end (or the run's start) -> queued; *queue* = queued -> running
  (Celery hand-off to the worker, its supervisor forking the task process); *running* = running -> success;
* per task, from our own task-body log line (:mod:`ml.task_marker`, in the task's log file): *body* = the
  task function, and its peak RSS; *task process outside the body* = running - body (DAG-file parse, the
  task runner, XCom and state calls). A successful task without a body line is an error: its body would
  otherwise be booked as Airflow overhead.

The deployed wall is exactly: trigger -> run start + sum(scheduling) + sum(queue) + sum(outside body) +
sum(body) + last task end -> run end (the tasks run one at a time).

API for ``bench/run_bench.py`` (stable)::

    from bench import deployed
    cfg = deployed.make_config(quick=False, repeats=3)  # or run_bench's cfg: keys overhead_data, repeats, epochs, workers
    result = deployed.collect(cfg)                       # JSON-serialisable dict
    markdown = deployed.render(result)                   # body of the section deployed.TITLE (no heading)

Standalone (needs PostgreSQL and Redis, like ``make test-distributed``; writes bench/out/deployed-<tag>.json
and .md, prints the Markdown)::

    source scripts/env.sh && python -m bench.deployed [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    KAGGLE_TEST,
    KAGGLE_TRAIN,
    OUT,
    REPO,
    child_env,
    ensure_demo,
    fmt,
    md_table,
    median,
    run_proc,
)
from scripts.distributed.check_run import Api, Setup, login, wait_for, wait_for_dag  # noqa: E402
from scripts.distributed.topology import DEFAULT_HOST, GPU_HOST, USER, CeleryTopology  # noqa: E402

log = logging.getLogger(__name__)

TITLE = "Deployed path (CeleryExecutor)"
DAG_ID = "turkey_training"
TARGET_RATIO = 1.3
RUN_TIMEOUT_S = 1200
READY_TIMEOUT_S = 300
POLL_S = 0.5
EPOCHS_LINE = re.compile(r"trained (\d+) epoch\(s\)")
SWEEP_RESULT = OUT / "scheduler-sweep.json"  # written by bench.scheduler_sweep, shown in the section when present
#: Deployment settings that shape the deployed wall, recorded with the result and shown in the section.
DEPLOYMENT_SETTINGS = (
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
)


# ------------------------------------------------------------------------------------------------ config
def make_config(quick: bool = False, repeats: int | None = None) -> dict:
    """The settings :func:`collect` reads, with ``make bench``'s key names: demo data (name, train, test
    sizes), repeats, epochs (None: the recipe's), data-generation workers."""
    if quick:
        return {"tag": "quick", "overhead_data": ("quick-300", 300, 300), "repeats": repeats or 1, "epochs": 2,
                "workers": 2}
    return {"tag": "full", "overhead_data": ("kaggle-1x", KAGGLE_TRAIN, KAGGLE_TEST), "repeats": repeats or 3,
            "epochs": None, "workers": 2}


def run_conf(cfg: dict) -> dict:
    """The DAG run conf for ``cfg`` (the same as ``make bench``'s overhead section)."""
    return {} if cfg["epochs"] is None else {"epochs": cfg["epochs"], "min_val_accuracy": 0.0}


# ------------------------------------------------------------------------------------------------ bare
def run_bare(data: dict, cfg: dict, root: Path, i: int) -> dict:
    """One run of bench/bare_pipeline.py in a fresh process: wall, peak RSS and its own timers."""
    out = root / f"bare-{i}"
    shutil.rmtree(out, ignore_errors=True)
    extra = [] if cfg["epochs"] is None else ["--epochs", str(cfg["epochs"])]
    p = run_proc(
        [sys.executable, REPO / "bench" / "bare_pipeline.py", "--train", data["train"], "--test", data["test"],
         "--out", out, *extra],
        env=child_env(),
        timeout=RUN_TIMEOUT_S,
        log_path=root / f"bare-{i}.log",
    ).check()
    r = p.result()
    log.info("bare #%d: %.1fs (%s epochs)", i + 1, p.wall, r["epochs_run"])
    return {"wall": p.wall, "maxrss_mib": p.maxrss_mib, **r}


# ------------------------------------------------------------------------------------------------ deployed
def _ts(value: str | None) -> float | None:
    """Seconds since the epoch of an ISO timestamp from the REST API (None stays None)."""
    return datetime.fromisoformat(value).timestamp() if value else None


def wait_ready(topo, api, timeout: float = READY_TIMEOUT_S) -> None:
    """Until the API answers, we are logged in, the scheduler reports healthy, the DAG is parsed and both
    Celery workers are ready; fails fast when a component dies."""
    def alive(ok):
        if dead := topo.dead_components():
            raise Setup(f"component {', '.join(dead)} exited while starting (logs in {topo.logs})")
        return ok

    wait_for("the API server", lambda: alive(api.call("GET", "/api/v2/monitor/health")[0] == 200), timeout)
    login(api, USER, topo.password)
    wait_for("a healthy scheduler", lambda: alive(
        (api.call("GET", "/api/v2/monitor/health")[1] or {}).get("scheduler", {}).get("status") == "healthy"),
        timeout, every=1)
    wait_for_dag(api, timeout)
    wait_for("both Celery workers", lambda: alive(topo.worker_ready(GPU_HOST) and topo.worker_ready(DEFAULT_HOST)),
             timeout, every=1)
    api.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})


def task_bodies(run_logs: Path) -> tuple[dict, int | None]:
    """{task: {seconds, rss_mib}} from the ``ml.task_marker`` lines of one run's task logs (the last
    finished/failed line per task), and the epochs the train task logged."""
    from ml.task_marker import parse

    bodies, epochs = {}, None
    for path in sorted(run_logs.rglob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            marker = parse(line)
            if marker and marker["event"] != "started":
                bodies[marker["task"]] = {
                    "seconds": marker["seconds"], "rss_mib": marker["rss_mib"], "child_rss_mib": marker["child_rss_mib"]
                }
            elif m := EPOCHS_LINE.search(line):
                epochs = int(m.group(1))
    return bodies, epochs


def breakdown(run: dict, tis: list[dict], bodies: dict, t_trigger: float) -> dict:
    """One deployed run's wall and where it went (module docstring), per task and summed."""
    run_start, run_end = _ts(run["start_date"]), _ts(run["end_date"])
    ran = sorted((t for t in tis if t["state"] in ("success", "failed") and t.get("start_date") and t.get("end_date")),
                 key=lambda t: _ts(t["start_date"]))  # a skipped task has dates too, but never ran
    missing = [t["task_id"] for t in ran if t["state"] == "success" and t["task_id"] not in bodies]
    if missing:
        raise RuntimeError(f"run {run['dag_run_id']}: no task-body line (ml.task_marker) in the log of {missing}")
    tasks, ends = {}, []
    for t in ran:
        queued, start, end = _ts(t["queued_when"]), _ts(t["start_date"]), _ts(t["end_date"])
        ready = max([e for e in ends if e <= (queued or start)], default=run_start)
        body = bodies.get(t["task_id"], {})
        running = end - start
        tasks[t["task_id"]] = {
            "state": t["state"],
            "queue": t.get("queue"),
            "hostname": t.get("hostname"),
            "scheduling": (queued or start) - ready,
            "queue_latency": start - queued if queued else None,
            "running": running,
            "body": body.get("seconds"),
            "outside_body": running - body["seconds"] if body.get("seconds") is not None else None,
            "rss_mib": body.get("rss_mib"),
            "child_rss_mib": body.get("child_rss_mib"),
        }
        ends.append(end)
    parts = {
        "trigger_to_start": run_start - t_trigger,
        "scheduling": sum(x["scheduling"] for x in tasks.values()),
        "queue_latency": sum(x["queue_latency"] or 0.0 for x in tasks.values()),
        "outside_body": sum(x["outside_body"] or 0.0 for x in tasks.values()),
        "body": sum(x["body"] or 0.0 for x in tasks.values()),
        "after_last_task": run_end - max(ends, default=run_start),
    }
    return {"run_id": run["dag_run_id"], "state": run["state"], "wall": run_end - t_trigger, "parts": parts,
            "tasks": tasks}


def run_deployed(topo, api, conf: dict, i: int) -> dict:
    """Trigger one run on an emptied artifacts root, wait for it, and break its wall down."""
    for child in topo.artifacts_root.iterdir():  # no champion: every run does the same work
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    t_trigger = time.time()
    run = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run["state"] not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run['dag_run_id']} still {run['state']} after {RUN_TIMEOUT_S}s")
        if dead := topo.dead_components():
            raise RuntimeError(f"component {', '.join(dead)} exited (logs in {topo.logs})")
        time.sleep(POLL_S)
        run = api.ok("GET", path)
    seen = time.time() - t_trigger
    tis = api.ok("GET", f"{path}/taskInstances", params={"limit": 100})["task_instances"]
    if run["state"] != "success":
        raise RuntimeError(f"run {run['dag_run_id']} {run['state']}: { {t['task_id']: t['state'] for t in tis} }")
    bodies, epochs = task_bodies(topo.task_logs(DAG_ID) / f"run_id={run['dag_run_id']}")
    b = breakdown(run, tis, bodies, t_trigger)
    log.info("deployed #%d: %.1fs trigger -> success (%s epochs)", i + 1, b["wall"], epochs)
    return {**b, "seen_wall": seen, "epochs_run": epochs}


@contextmanager
def deployment(**env) -> Iterator[tuple[CeleryTopology, Api]]:
    """``make test-distributed``'s deployment with ``env`` added to its environment, started and ready
    (scheduler healthy, DAG parsed, both workers up): yields the topology and a REST client; stops it after."""
    with CeleryTopology(base_env=child_env(**env)) as topo:
        api = Api(topo.api_url)
        wait_ready(topo, api)
        yield topo, api


def land(topo: CeleryTopology, data: dict) -> None:
    """Put the demo ``data`` (train and test files) where the deployment's DAG reads its input."""
    shutil.copyfile(data["train"], topo.landing / "train.json")
    shutil.copyfile(data["test"], topo.landing / "test.json")


def collect(cfg: dict) -> dict:
    """Run the bare script, then the deployment, ``cfg['repeats']`` times each; see the module docstring.

    Reads ``cfg['overhead_data']`` ((name, n_train, n_test) of the demo data), ``cfg['repeats']``,
    ``cfg['epochs']`` (None: the recipe's) and ``cfg.get('workers', 2)``. Needs PostgreSQL and Redis."""
    name, n_train, n_test = cfg["overhead_data"]
    data = ensure_demo(name, n_train, n_test, seed=0, workers=cfg.get("workers", 2))
    root = OUT / "deployed"
    root.mkdir(parents=True, exist_ok=True)
    conf = run_conf(cfg)
    bare = [run_bare(data, cfg, root, i) for i in range(cfg["repeats"])]
    t0 = time.monotonic()
    with deployment() as (topo, api):
        land(topo, data)
        ready_s = time.monotonic() - t0
        log.info("deployment ready in %.0fs", ready_s)
        deployed = [run_deployed(topo, api, conf, i) for i in range(cfg["repeats"])]
        settings = {k: topo.env.get(k) for k in DEPLOYMENT_SETTINGS}
    sweep = json.loads(SWEEP_RESULT.read_text()) if SWEEP_RESULT.is_file() else None
    return {"data": data, "conf": conf, "repeats": cfg["repeats"], "ready_seconds": ready_s, "bare": bare,
            "deployed": deployed, "settings": settings, "scheduler_sweep": sweep}


def collect_scales(datasets: list[tuple[str, dict]], conf: dict) -> list[dict]:
    """The whole DAG on the deployment once per ``(name, demo data)`` in ``datasets``, with run ``conf``
    (one deployment, started once): every task in its own process, so each task-body line's peak RSS is
    that task's own (and *largest child* its parse workers'). Needs PostgreSQL and Redis."""
    runs = []
    with deployment() as (topo, api):
        for i, (name, data) in enumerate(datasets):
            land(topo, data)
            runs.append({"scale": name, "n_train": data["n_train"], **run_deployed(topo, api, conf, i)})
    return runs


# ------------------------------------------------------------------------------------------------ render
def _settings_line(settings: dict | None) -> str:
    """One sentence on the deployment settings that shape the wall (as in docker-compose.yaml)."""
    if not settings:
        return ""
    sleep = settings.get("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME") or "1 (Airflow's default)"
    warm = settings.get("AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS")
    return (
        f" Deployment settings (as in `docker-compose.yaml`): the scheduler's idle sleep "
        f"(`[scheduler] scheduler_idle_sleep_time`) {sleep} s; the workers' `[workers] min_heartbeat_interval` "
        f"{settings.get('AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL') or '5 (Airflow default)'} s (how soon a worker "
        "notices a finished task process); "
        + (f"the workers pre-import Great Expectations before forking tasks (`{warm}`)." if warm else
           "the workers import everything in each task process (no `celery_config_options`).")
    )


def _sweep_block(sweep: dict | None) -> list[str]:
    """The scheduler idle-sleep sweep, when bench/out/ holds one (``python -m bench.scheduler_sweep``)."""
    if not sweep:
        return ["", "No scheduler idle-sleep sweep in `bench/out/` (run `source scripts/env.sh && .venv/bin/python "
                "-m bench.scheduler_sweep` to add one here)."]
    from bench.scheduler_sweep import render as render_sweep

    m = sweep["meta"]
    return [
        "",
        f"The scheduler's idle sleep, swept by {m['command']} on {m['date']} (git {m['git']}): per value a fresh "
        f"deployment, the scheduler's CPU over {m['idle_seconds']:.0f} s with no run, then {m['repeats']} run(s) as "
        "above. *scheduling* is the summed wait between a task's end and the next task being queued.",
        "",
        render_sweep(sweep["results"]),
        "",
        "The deployment's value is `SCHEDULER_IDLE_SLEEP_S` in `scripts/distributed/topology.py` (and "
        "`docker-compose.yaml`), where the choice is explained.",
    ]


def render(r: dict) -> str:
    """The Markdown body of the section :data:`TITLE` (no heading): walls and ratio, where the deployed
    wall goes, per-task overhead."""
    bare, dep = r["bare"], r["deployed"]
    bw, dw = median([x["wall"] for x in bare]), median([x["wall"] for x in dep])
    ratio = dw / bw
    d = r["data"]

    def part(key):
        return median([x["parts"][key] for x in dep])

    out = [
        f"Data: demo data, {d['n_train']:,} train / {d['n_test']:,} test records (seed {d['seed']}); recipe "
        f"`default`, split seed 42, DAG conf `{json.dumps(r['conf'])}`. The deployment is `make test-distributed`'s "
        "(CeleryExecutor on PostgreSQL + Redis, a default-queue worker with concurrency 2, a gpu-queue worker with "
        "one task per child process, every component a process on this machine), started once "
        f"({r['ready_seconds']:.0f} s until the scheduler was healthy, the DAG parsed and both workers ready: not "
        f"included); then {len(dep)} run(s) triggered through the REST API one after another, each on an emptied "
        f"artifacts root (no champion). The bare script ran {len(bare)} time(s) in a fresh process each, before the "
        "deployment started." + _settings_line(r.get("settings")),
        "",
        md_table(
            ["", "run 1..n wall (s)", "median wall (s)", "epochs run", "peak RSS (MiB, median)"],
            [
                ["bare script (`bench/bare_pipeline.py`, fresh process)", ", ".join(fmt(x["wall"], 1) for x in bare),
                 bw, "/".join(str(x["epochs_run"]) for x in bare), median([x["maxrss_mib"] for x in bare])],
                ["deployed: trigger (REST) -> run `end_date`", ", ".join(fmt(x["wall"], 1) for x in dep), dw,
                 "/".join(str(x["epochs_run"]) for x in dep),
                 median([max((t["rss_mib"] or 0) for t in x["tasks"].values()) for x in dep])],
            ],
        ),
        "",
        f"**Ratio deployed / bare = {ratio:.2f}** (target <= {TARGET_RATIO}: "
        f"**{'met' if ratio <= TARGET_RATIO else 'NOT met'}**). The deployed peak RSS is the largest task process's "
        "(from the task-body log lines); the bare one is the whole script's.",
        "",
        "Where the deployed wall goes (medians over the runs; the parts add up to the wall):",
        "",
        md_table(
            ["part", "seconds", "what it is"],
            [
                ["trigger -> run start", part("trigger_to_start"), "REST call, the scheduler creating and starting the run"],
                ["scheduling (sum over tasks)", part("scheduling"),
                 "previous task's end -> next task queued: the scheduler loop noticing it, the executor queueing it"],
                ["queue (sum over tasks)", part("queue_latency"),
                 "queued -> running: Redis to the Celery worker, its supervisor forking the task process"],
                ["task processes outside the body (sum)", part("outside_body"),
                 "running -> success minus the body: DAG-file parse and imports in the task process, task runner, "
                 "XCom and state calls"],
                ["task bodies (sum)", part("body"),
                 "our code, with its own lazy imports (TensorFlow in train and evaluate) and work the bare script "
                 "does not do (GX validation, logistic baseline, registry)"],
                ["last task end -> run end", part("after_last_task"), "the scheduler marking the run finished"],
                ["**gap to the bare script**", dw - bw, "deployed median - bare median"],
            ],
            align=["l", "r", "l"],
        ),
        "",
        f"Bare script, for comparison (median): interpreter start-up and exit "
        f"{fmt(median([x['wall'] - x['in_process_seconds'] for x in bare]), 1)} s, imports "
        f"{fmt(median([x['times']['import_ml'] + x['times']['import_tf'] for x in bare]), 1)} s, read + pad "
        f"{fmt(median([x['times']['read_json'] + x['times']['split_pad'] for x in bare]), 1)} s, fit "
        f"{fmt(median([x['times']['fit'] for x in bare]), 1)} s, score + write "
        f"{fmt(median([x['times']['score_and_write'] for x in bare]), 1)} s.",
        "",
        "Per task (medians over the runs; seconds; from the task instances' `queued_dttm`, `start_date`, "
        "`end_date` and the task-body log lines):",
        "",
    ]
    names = list(dep[0]["tasks"])

    def tm(task, key):
        return median([x["tasks"][task][key] for x in dep if task in x["tasks"]])

    rows = [
        [f"`{t}`", dep[0]["tasks"][t]["queue"] or "-", tm(t, "scheduling"), tm(t, "queue_latency"), tm(t, "running"),
         tm(t, "body"), tm(t, "outside_body"), fmt(tm(t, "rss_mib"), 0)]
        for t in names
    ]
    out.append(md_table(
        ["task", "queue", "end of previous -> queued", "queued -> running", "running -> success", "body",
         "outside the body", "body peak RSS (MiB)"],
        rows,
    ))
    out += _sweep_block(r.get("scheduler_sweep"))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ CLI
def main(argv=None) -> int:
    """``python -m bench.deployed [--repeats N] [--quick]``: collect, write bench/out/deployed-<tag>.json and
    .md, print the Markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, help="runs of each side (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="300/300 records, 2 epochs: a smoke test")
    a = ap.parse_args(argv)
    logging.basicConfig(format="[deployed %(asctime)s] %(message)s", datefmt="%H:%M:%S", level=logging.INFO,
                        stream=sys.stdout)
    cfg = make_config(a.quick, a.repeats)
    result = collect(cfg)
    md = render(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"deployed-{cfg['tag']}.json").write_text(json.dumps(result, indent=2, default=str))
    (OUT / f"deployed-{cfg['tag']}.md").write_text(f"## {TITLE}\n\n{md}")
    print(f"\n## {TITLE}\n\n{md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
