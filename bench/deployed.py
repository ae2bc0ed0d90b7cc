"""Section 1b (and the deployed half of 2b): ``turkey_training`` on the CeleryExecutor deployment vs the bare script.

The deployment is ``make test-distributed``'s (:class:`scripts.distributed.topology.CeleryTopology`), started
once; when it is ready the DAG is triggered N times through the REST API, one run after another, each on an
emptied artifacts root (no champion). The bare script runs N times before it starts. Per run, from the REST
API: the wall (just before the trigger -> the run's ``end_date``) and per task instance *scheduling* (the
previous task's end -> ``queued_when``), *queue* (-> ``start_date``) and *running* (-> ``end_date``): the parts
add up to the wall. Each task runs in its own process (the task instance's ``pid``), whose peak RSS and its
largest child's come from :mod:`bench.procwatch`. Needs PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from contextlib import contextmanager
from datetime import datetime

from bench.common import OUT, RESULTS, Figure, child_env, ensure_demo, fmt, log, md_table, median, run_bare
from bench.procwatch import INTERVAL_S, Watch, task_memory
from scripts.distributed.check_run import DAG_ID, Api, Setup, login, trigger_run, wait_for, wait_for_dag, wait_run
from scripts.distributed.topology import DEFAULT_HOST, GPU_HOST, SCHEDULER_IDLE_SLEEP_S, USER, CeleryTopology

TARGET_RATIO = 1.3
RUN_TIMEOUT_S = 1200
SWEEP_RESULT = RESULTS / "scheduler_sweep.json"  # written by bench.scheduler_sweep, shown in section 1b
SETTINGS = ("AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS")


def _ts(value: str | None) -> float | None:
    """POSIX seconds of an ISO timestamp from the REST API (None stays None)."""
    return datetime.fromisoformat(value).timestamp() if value else None


def wait_ready(topo: CeleryTopology, api: Api, timeout: float = 300) -> None:
    """Until the API answers, we are logged in, the scheduler is healthy, the DAG is parsed and both Celery
    workers are ready (fails fast when a component dies); then the DAG is unpaused."""
    def alive(ok):
        if dead := topo.dead_components():
            raise Setup(f"component {', '.join(dead)} exited while starting (logs in {topo.logs})")
        return ok

    def health():
        return api.call("GET", "/api/v2/monitor/health")

    wait_for("the API server", lambda: alive(health()[0] == 200), timeout)
    login(api, USER, topo.password)
    wait_for("a healthy scheduler",
             lambda: alive((health()[1] or {}).get("scheduler", {}).get("status") == "healthy"), timeout, every=1)
    wait_for_dag(api, timeout)
    wait_for("both Celery workers", lambda: alive(topo.worker_ready(GPU_HOST) and topo.worker_ready(DEFAULT_HOST)),
             timeout, every=1)
    api.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})


@contextmanager
def deployment(**env):
    """The deployment with ``env`` added to its environment, started and ready, and a :class:`Watch` of its
    processes: yields ``(topology, api, watch)``; stops everything after."""
    with Watch() as watch, CeleryTopology(base_env=child_env(**env)) as topo:
        api = Api(topo.api_url)
        wait_ready(topo, api)
        yield topo, api, watch


def land(topo: CeleryTopology, data: dict) -> None:
    """Put the demo ``data`` where the deployment's DAG reads its input."""
    for split in ("train", "test"):
        shutil.copyfile(data[split], topo.landing / f"{split}.json")


def breakdown(run: dict, tis: list[dict], t_trigger: float) -> dict:
    """One run's wall and its parts (module docstring), per task and summed; skipped tasks never ran."""
    run_start, run_end = _ts(run["start_date"]), _ts(run["end_date"])
    ran = sorted((t for t in tis if t["state"] in ("success", "failed")), key=lambda t: _ts(t["start_date"]))
    tasks, ends = {}, []
    for t in ran:
        queued, start, end = _ts(t["queued_when"]), _ts(t["start_date"]), _ts(t["end_date"])
        ready = max([e for e in ends if e <= (queued or start)], default=run_start)
        tasks[t["task_id"]] = {"queue": t.get("queue"), "pid": t.get("pid"), "start": start, "end": end,
                               "scheduling": (queued or start) - ready, "queue_latency": start - queued if queued else 0.0,
                               "running": end - start}
        ends.append(end)
    parts = {"trigger_to_start": run_start - t_trigger,
             **{k: sum(x[k] for x in tasks.values()) for k in ("scheduling", "queue_latency", "running")},
             "after_last_task": run_end - max(ends, default=run_start)}
    return {"run_id": run["dag_run_id"], "wall": run_end - t_trigger, "parts": parts, "tasks": tasks}


def run_deployed(topo: CeleryTopology, api: Api, watch: Watch, conf: dict) -> dict:
    """Trigger one run on an emptied artifacts root, wait for it, break its wall down, add each task's memory."""
    for child in topo.artifacts_root.iterdir():  # no champion: every run does the same work
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    t_trigger = time.time()
    run_id = trigger_run(api, conf)
    state, tis = wait_run(api, run_id, RUN_TIMEOUT_S)
    if state != "success":
        raise RuntimeError(f"run {run_id} ended {state}: { {k: t['state'] for k, t in tis.items()} } (logs in {topo.logs})")
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id)}"
    b = breakdown(api.ok("GET", path), list(tis.values()), t_trigger)
    for t in b["tasks"].values():
        t.update(task_memory(watch.seen, t["pid"], t["start"], t["end"], shared=False))
    trained = api.ok("GET", f"{path}/taskInstances/train/xcomEntries/return_value")["value"]
    b["epochs_run"] = (json.loads(trained) if isinstance(trained, str) else trained).get("epochs_run")
    log(f"deployed: {b['wall']:.1f}s trigger -> end ({b['epochs_run']} epochs)")
    return b


def collect(cfg: dict) -> dict:
    """Section 1b: the bare script ``cfg['repeats']`` times, then the deployment's runs as many times."""
    data = ensure_demo(*cfg["overhead_data"])
    root = OUT / "deployed"
    bare = [run_bare(data, root / f"bare-{i}", cfg["epochs"], root / f"bare-{i}.log") for i in range(cfg["repeats"])]
    conf = {} if cfg["epochs"] is None else {"epochs": cfg["epochs"], "min_val_accuracy": 0.0}
    t0 = time.monotonic()
    with deployment() as (topo, api, watch):
        land(topo, data)
        ready_s = time.monotonic() - t0
        runs = [run_deployed(topo, api, watch, conf) for _ in range(cfg["repeats"])]
        settings = {k: topo.env.get(k) for k in SETTINGS}
    sweep = json.loads(SWEEP_RESULT.read_text()) if SWEEP_RESULT.is_file() else None
    return {"data": data, "conf": conf, "ready_seconds": ready_s, "bare": bare, "deployed": runs, "settings": settings,
            "scheduler_sweep": sweep}


def collect_scales(datasets: list[tuple[str, dict]], conf: dict) -> list[dict]:
    """Section 2b's deployed half: one run per ``(scale name, demo data)`` on one deployment."""
    out = []
    with deployment() as (topo, api, watch):
        for name, data in datasets:
            land(topo, data)
            out.append({"scale": name, "n_train": data["n_train"], **run_deployed(topo, api, watch, conf)})
    return out


# ------------------------------------------------------------------------------------------------ render
def figures(r: dict) -> list[Figure]:
    """Section 1b's headlines: the deployed / bare wall ratio, and the sweep's scheduling wait at the default."""
    ratio = median([x["wall"] for x in r["deployed"]]) / median([x["wall"] for x in r["bare"]])
    figs = [Figure(f"CeleryExecutor deployment / bare script wall ({r['data']['n_train']:,} train records, median)",
                   ratio, "x", "<=", TARGET_RATIO)]
    if (sweep := r.get("scheduler_sweep")) and (row := sweep_default(sweep)):
        m = sweep["meta"]
        figs.append(Figure(f"waits between tasks per run at the deployment's scheduler idle sleep ({row['value']} s)",
                           median(row["scheduling"]), "s", command=m["command"], when=f"{m['date']}, git {m['git']}"))
    return figs


def render(r: dict) -> str:
    """Section 1b: walls, where the deployed wall goes, per task, and the idle-sleep sweep when saved."""
    bare, dep, d, s = r["bare"], r["deployed"], r["data"], r["settings"]
    part = lambda key: median([x["parts"][key] for x in dep])  # noqa: E731
    tm = lambda t, k: median([x["tasks"][t][k] for x in dep if t in x["tasks"]])  # noqa: E731
    bw, dw = median([x["wall"] for x in bare]), median([x["wall"] for x in dep])
    out = [
        f"Data: demo data, {d['n_train']:,} train / {d['n_test']:,} test records (seed {d['seed']}); recipe `default`, "
        f"DAG conf `{json.dumps(r['conf'])}`. The deployment is `make test-distributed`'s (CeleryExecutor on PostgreSQL "
        "+ Redis, a default-queue worker with concurrency 2, a gpu-queue worker with one task per child process, every "
        f"component a process on this machine), started once ({r['ready_seconds']:.0f} s until ready: not included), "
        f"then {len(dep)} run(s) triggered through the REST API one after another, each on an emptied artifacts root. "
        f"The bare script ran {len(bare)} time(s) before the deployment started. Settings: "
        + ", ".join(f"`{k}={v}`" for k, v in s.items()) + ".",
        "",
        md_table(["", "run 1..n wall (s)", "median wall (s)", "epochs run", "peak RSS (MiB, median)"], [
            ["bare script (fresh process; `wait4`)", ", ".join(fmt(x["wall"], 1) for x in bare), bw,
             "/".join(str(x["epochs_run"]) for x in bare), median([x["maxrss_mib"] for x in bare])],
            ["deployed: trigger (REST) -> run `end_date`; the largest task process", ", ".join(fmt(x["wall"], 1) for x in dep),
             dw, "/".join(str(x["epochs_run"]) for x in dep),
             median([max((t["peak_rss_mib"] or 0) for t in x["tasks"].values()) for x in dep])]]),
        "",
        "Where the deployed wall goes (medians over the runs; the parts add up to the wall):",
        "",
        md_table(["part", "seconds", "what it is"], [
            ["trigger -> run start", part("trigger_to_start"), "REST call, the scheduler creating and starting the run"],
            ["scheduling (sum over tasks)", part("scheduling"), "previous task's end -> next task queued"],
            ["queue (sum over tasks)", part("queue_latency"), "queued -> running: Redis to the worker, the task process forked"],
            ["task instances running (sum)", part("running"), "running -> finished: DAG-file parse in the task process, "
             "our task body (with its own imports), XCom and state calls"],
            ["last task end -> run end", part("after_last_task"), "the scheduler marking the run finished"],
            ["**gap to the bare script**", dw - bw, "deployed median - bare median"]], "lrl"),
        "",
        "Per task (medians; seconds; from the task instances' `queued_when`, `start_date`, `end_date`; peak RSS of the "
        f"task process (`pid`) and its largest child, sampled every {INTERVAL_S} s from `/proc/<pid>/status` VmHWM, a "
        "high-water mark, so only growth in a process's last interval can be missed):",
        "",
        md_table(["task", "queue", "end of previous -> queued", "queued -> running", "running", "peak RSS (MiB)",
                  "largest child (MiB)"],
                 [[f"`{t}`", dep[0]["tasks"][t]["queue"] or "-", tm(t, "scheduling"), tm(t, "queue_latency"),
                   tm(t, "running"), fmt(tm(t, "peak_rss_mib"), 0), fmt(tm(t, "child_peak_rss_mib"), 0)]
                  for t in dep[0]["tasks"]]),
    ]
    sweep = r.get("scheduler_sweep")
    if sweep:
        m = sweep["meta"]
        out += ["", f"The scheduler's idle sleep, swept by `{m['command']}` on {m['date']} (git {m['git']}): per value a "
                f"fresh deployment, the scheduler's CPU over {m['idle_seconds']:.0f} s with no run, then {m['repeats']} "
                "run(s) as above. The deployment's value is `SCHEDULER_IDLE_SLEEP_S` in `scripts/distributed/topology.py`.",
                "", render_sweep(sweep["results"])]
    else:
        out += ["", f"No saved scheduler idle-sleep sweep (`{SWEEP_RESULT.relative_to(RESULTS.parent.parent)}`): "
                "`python -m bench.scheduler_sweep` writes it."]
    return "\n".join(out)


def sweep_default(sweep: dict) -> dict | None:
    """The sweep's row for the deployment's value (``SCHEDULER_IDLE_SLEEP_S``), if it was swept."""
    return next((x for x in sweep["results"] if float(x["value"]) == float(SCHEDULER_IDLE_SLEEP_S)), None)


def render_sweep(results: list[dict]) -> str:
    """The scheduler idle-sleep sweep (:mod:`bench.scheduler_sweep`), one row per value."""
    return md_table(["idle sleep (s)", "run walls (s)", "median wall (s)", "scheduling, sum (s)", "per task (s)",
                     "scheduler CPU while idle (of one core)"],
                    [[f"`{x['value']}`", ", ".join(fmt(w, 1) for w in x["walls"]), fmt(median(x["walls"]), 1),
                      median(x["scheduling"]), median(x["scheduling"]) / max(x["tasks"], 1),
                      f"{100 * x['idle_scheduler_cpu_share']:.1f}%"] for x in results])


def render_scales(dep: list[dict]) -> str:
    """Section 2b's deployed runs: per task and scale, running seconds, peak RSS and largest child."""
    tasks = list(dict.fromkeys(t for x in dep for t in x["tasks"]))
    cols = ("running", "peak_rss_mib", "child_peak_rss_mib")
    head = ["task"] + [f"{x['scale']} {c}" for x in dep for c in ("running (s)", "peak RSS (MiB)", "largest child (MiB)")]
    rows = [[f"`{t}`"] + [fmt(x["tasks"].get(t, {}).get(c), 2 if c == "running" else 0) for x in dep for c in cols]
            for t in tasks]
    rows.append(["**trigger -> run end (wall)**"] + [v for x in dep for v in (x["wall"], "", "")])
    return ("The same conf once per scale on the CeleryExecutor deployment (section 1b's set-up, started once), where "
            "every task runs in its own process: *peak RSS* is that process's own (sampled VmHWM), *largest child* its "
            "largest child's (the fast reader's parse workers).\n\n" + md_table(head, rows))
