"""Sections 1 and 2b: the bare script vs the whole ``turkey_training`` DAG through ``airflow dags test`` (as
``make run`` runs it), and the whole DAG at 10x and 100x; each DAG run on a fresh copy of a migrated SQLite DB.

Figures come from what Airflow records anyway -- the ``dag_run`` and ``task_instance`` rows (dates, pid) and
the XComs the tasks return (``epochs_run``, ``train_seconds``, the metrics) -- and from the bench's view of the
process: wall time and peak RSS (``wait4``), per task its peak RSS so far (:mod:`bench.procwatch`).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from bench import deployed
from bench.common import OUT, PY, REPO, Figure, child_env, ensure_demo, fmt, log, md_table, median, run_bare, run_proc
from bench.procwatch import Watch, task_memory

DAG_ID = "turkey_training"
TARGET_RATIO = 1.5
SCALE_CONF = {"epochs": 1, "min_val_accuracy": 0.0}  # section 2b: one epoch, no accuracy gate
GROWTH_TARGET = 1.25  # wall (or seconds) per record may grow by at most 25% from one scale to the next
RSS_TARGET_MIB = 2048


# ------------------------------------------------------------------------------------------------ one run
def airflow_env(home: Path, root: Path) -> dict:
    """The environment of a ``dags test`` run on an SQLite DB in ``home``, data and artifacts under ``root``."""
    return child_env(AIRFLOW_HOME=home, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
                     AIRFLOW__CORE__DAGS_FOLDER=REPO / "dags", AIRFLOW__CORE__LOAD_EXAMPLES="False",
                     TURKEY_DATA_ROOT=root / "data", TURKEY_ARTIFACTS_ROOT=root / "artifacts")


def migrated_home(root: Path) -> tuple[Path, float]:
    """A migrated, empty AIRFLOW_HOME to copy for each run, and the seconds ``airflow db migrate`` took."""
    home = root / "template-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    p = run_proc(["airflow", "db", "migrate"], env=airflow_env(home, root / "unused"), timeout=900,
                 log_path=root / "db-migrate.log").check()
    return home, p.wall


def _ts(value: str | None) -> float | None:
    """POSIX seconds of a metadata-DB timestamp (naive UTC in SQLite)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() if value else None


def read_run(db: Path) -> dict:
    """The DAG run, its task instances that ran (in start order) and its XComs, from the SQLite metadata DB."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        state, start, end = con.execute("select state, start_date, end_date from dag_run where dag_id=?",
                                        (DAG_ID,)).fetchone()
        tis = [{"task_id": t, "state": s, "start": _ts(a), "end": _ts(b), "pid": pid} for t, s, a, b, pid in
               con.execute("select task_id, state, start_date, end_date, pid from task_instance where dag_id=? and "
                           "state in ('success', 'failed') order by start_date", (DAG_ID,))]
        xcom = con.execute("select task_id, key, value from xcom where dag_id=?", (DAG_ID,)).fetchall()
    finally:
        con.close()
    sizes = {}
    for task, _, value in xcom:
        rows, size = sizes.get(task, (0, 0))
        sizes[task] = (rows + 1, size + len(value or ""))
    returned = {task: json.loads(value) for task, key, value in xcom if key == "return_value"}
    return {"state": state, "start": _ts(start), "end": _ts(end), "tis": tis, "xcom": sizes, "returned": returned}


def breakdown(run: dict, started_at: float, wall: float, seen: dict) -> dict:
    """Where one ``dags test`` run's wall went: the parts (they add up to the wall) and per task its
    running seconds, the wait before it, its XCom rows/bytes and the process's peak RSS so far."""
    tis, tasks, prev = run["tis"], {}, run["start"]
    for ti in tis:
        tasks[ti["task_id"]] = {"running": ti["end"] - ti["start"], "wait": ti["start"] - prev,
                                "xcom": run["xcom"].get(ti["task_id"], (0, 0)),
                                **task_memory(seen, ti["pid"], ti["start"], ti["end"], shared=True)}
        prev = ti["end"]
    parts = {"startup": run["start"] - started_at,
             "before_first": tis[0]["start"] - run["start"],
             "running": sum(t["running"] for t in tasks.values()),
             "between": sum(t["wait"] for t in list(tasks.values())[1:]),
             "after_last": run["end"] - tis[-1]["end"],
             "exit": started_at + wall - run["end"]}
    train, metrics = run["returned"].get("train", {}), run["returned"].get("evaluate", {})
    return {"parts": parts, "tasks": tasks, "epochs_run": train.get("epochs_run"), "fit": train.get("train_seconds"),
            "val_accuracy": metrics.get("val_accuracy"), "val_auc": metrics.get("val_auc")}


def run_dag_test(template: Path, root: Path, data: dict, conf: dict, timeout: float) -> dict:
    """One ``turkey_training`` run as ``make run`` runs it, on a copy of ``template``: wall, peak RSS and its
    :func:`breakdown`; raises unless it succeeded."""
    shutil.rmtree(root, ignore_errors=True)
    home = root / "airflow"
    shutil.copytree(template, home)
    cfg = home / "airflow.cfg"
    if cfg.is_file():
        cfg.write_text(cfg.read_text().replace(str(template), str(home)))
    (root / "data" / "landing").mkdir(parents=True)
    for split in ("train", "test"):
        shutil.copyfile(data[split], root / "data" / "landing" / f"{split}.json")
    with Watch() as watch:
        p = run_proc([PY, REPO / "scripts" / "airflow_fast_exit.py", "dags", "test", DAG_ID, "--conf", json.dumps(conf)],
                     env=airflow_env(home, root), timeout=timeout, log_path=root.with_suffix(".log")).check()
    run = read_run(home / "airflow.db")
    if run["state"] != "success":
        raise RuntimeError(f"the DAG run in {root} ended {run['state']}: {[(t['task_id'], t['state']) for t in run['tis']]}")
    b = breakdown(run, p.started_at, p.wall, watch.seen)
    log(f"dags test: {p.wall:.1f}s ({b['epochs_run']} epochs), peak RSS {p.maxrss_mib:.0f} MiB")
    return {"wall": p.wall, "maxrss_mib": p.maxrss_mib, **b}


# ------------------------------------------------------------------------------------------------ collect
def collect_overhead(cfg: dict) -> dict:
    """Section 1: the bare script and the DAG alternately, ``cfg['repeats']`` times each."""
    data = ensure_demo(*cfg["overhead_data"])
    root = OUT / "overhead"
    template, migrate_s = migrated_home(root)
    conf = {} if cfg["epochs"] is None else {"epochs": cfg["epochs"], "min_val_accuracy": 0.0}
    bare, dag = [], []
    for i in range(cfg["repeats"]):
        for kind in ("bare", "dag") if i % 2 == 0 else ("dag", "bare"):
            if kind == "bare":
                bare.append(run_bare(data, root / f"bare-{i}", cfg["epochs"], root / f"bare-{i}.log"))
            else:
                dag.append(run_dag_test(template, root / f"dag-{i}", data, conf, 1500))
    return {"data": data, "conf": conf, "migrate_seconds": migrate_s, "bare": bare, "dag": dag}


def collect_scale_dag(cfg: dict) -> dict:
    """Section 2b: the DAG under ``dags test`` once per scale, then the same on the CeleryExecutor deployment."""
    root = OUT / "scale_dag"
    template, _ = migrated_home(root)
    datasets = [(name, ensure_demo(n_train, n_test)) for name, n_train, n_test in cfg["dag_scales"]]
    runs = [{"scale": name, "n_train": d["n_train"], **run_dag_test(template, root / name, d, SCALE_CONF, 3600)}
            for name, d in datasets]
    out = {"conf": SCALE_CONF, "runs": runs}
    try:
        out["deployed"] = deployed.collect_scales(datasets, SCALE_CONF)
    except Exception as exc:  # noqa: BLE001 - e.g. no PostgreSQL/Redis here: the dags-test table still stands
        log(f"scale_dag: the deployed runs failed: {exc}")
        out["deployed_error"] = f"{type(exc).__name__}: {exc}"
    return out


# ------------------------------------------------------------------------------------------------ render
def _walls(rows) -> list:
    return [", ".join(fmt(x["wall"], 1) for x in rows), median([x["wall"] for x in rows]),
            "/".join(str(x["epochs_run"]) for x in rows)]


def figures_overhead(r: dict) -> list[Figure]:
    """Section 1's headline: the DAG / bare wall ratio."""
    ratio = median([x["wall"] for x in r["dag"]]) / median([x["wall"] for x in r["bare"]])
    return [Figure(f"`airflow dags test` / bare script wall ({r['data']['n_train']:,} train records, median)", ratio, "x",
                   "<=", TARGET_RATIO)]


def render_overhead(r: dict) -> str:
    """Section 1: walls and ratio, where the DAG run's wall goes, per task."""
    bare, dag, d = r["bare"], r["dag"], r["data"]
    part = lambda key: median([x["parts"][key] for x in dag])  # noqa: E731
    bt = lambda key: median([x["times"][key] for x in bare])  # noqa: E731
    tasks = list(dag[0]["tasks"])
    tm = lambda t, k: median([x["tasks"][t][k] for x in dag if t in x["tasks"]])  # noqa: E731
    xc = lambda t, i: median([x["tasks"][t]["xcom"][i] for x in dag if t in x["tasks"]])  # noqa: E731
    return "\n".join([
        f"Data: demo data, {d['n_train']:,} train / {d['n_test']:,} test records (seed {d['seed']}); recipe `default`, "
        f"DAG conf `{json.dumps(r['conf'])}`. Each side ran {len(bare)} time(s), interleaved; every DAG run got a fresh "
        "`AIRFLOW_HOME` (a copy of a migrated, empty SQLite metadata DB: no champion) and fresh data/artifacts roots. "
        f"`airflow db migrate`, once per installation, is not included: {r['migrate_seconds']:.1f} s.",
        "",
        md_table(["", "run 1..n wall (s)", "median wall (s)", "epochs run", "fit (s, median)", "peak RSS (MiB, median)"], [
            ["bare script (`python -m bench.bare_pipeline`, fresh process)", *_walls(bare), bt("fit"),
             median([x["maxrss_mib"] for x in bare])],
            ["`airflow dags test turkey_training` (as `make run`)", *_walls(dag), median([x["fit"] for x in dag]),
             median([x["maxrss_mib"] for x in dag])]]),
        "",
        "Where the DAG run's wall goes (medians; from the run's `dag_run` and `task_instance` rows and the process's "
        "own start and exit; the parts add up to the wall):",
        "",
        md_table(["part", "seconds", "what it is"], [
            ["process start -> DAG run created", part("startup"), "interpreter, Airflow import, DAG parse, run creation"],
            ["run created -> first task running", part("before_first"), "the in-process execution API starting, TI start"],
            ["task instances running (sum)", part("running"),
             "our task bodies and Airflow's work around each (rendering, XCom push, state update)"],
            ["between tasks (sum)", part("between"), "one task's end -> the next one's start"],
            ["last task end -> run end", part("after_last"), "the run marked finished"],
            ["run end -> process exit", part("exit"), "scripts/airflow_fast_exit.py: no interpreter teardown"],
            ["**total wall**", median([x["wall"] for x in dag]), ""]], "lrl"),
        "",
        f"Bare script's own timers (median): imports {fmt(bt('import_ml') + bt('import_tf'), 1)} s, read "
        f"{fmt(bt('read_json'), 1)} s, split + pad {fmt(bt('split_pad'), 1)} s, fit {fmt(bt('fit'), 1)} s, score + write "
        f"{fmt(bt('score_and_write'), 1)} s; interpreter start-up and exit "
        f"{fmt(median([x['wall'] - x['in_process_seconds'] for x in bare]), 1)} s.",
        "",
        "Per task (medians; *running* = `start_date` -> `end_date` of the task instance):",
        "",
        md_table(["task", "running (s)", "wait before (s)", "XCom rows", "XCom bytes"],
                 [[f"`{t}`", tm(t, "running"), tm(t, "wait"), fmt(xc(t, 0), 0), fmt(xc(t, 1), 0)] for t in tasks]),
        "",
        "Validation accuracy / ROC AUC, DAG runs (the evaluate task's XCom): "
        + ", ".join(f"{x['val_accuracy']:.4f} / {x['val_auc']:.4f}" for x in dag)
        + "; bare runs: " + ", ".join(f"{x['val_accuracy']:.4f} / {x['val_auc']:.4f}" for x in bare) + ".",
    ])


def figures_scale_dag(r: dict) -> list[Figure]:
    """Section 2b's headlines: per-record growth of the wall, and the largest task process at the top scale."""
    runs, figs = r["runs"], []
    if len(runs) >= 2:
        a, b = runs[-2], runs[-1]
        growth = (b["wall"] / b["n_train"]) / (a["wall"] / a["n_train"])
        figs.append(Figure(f"whole DAG (`dags test`, 1 epoch): wall per record, {a['scale']} -> {b['scale']}", growth,
                           "x", "<=", GROWTH_TARGET))
    figs.append(Figure(f"whole DAG (`dags test`, 1 epoch): wall at {runs[-1]['scale']}", runs[-1]["wall"], "s", digits=1))
    if r.get("deployed"):
        top = r["deployed"][-1]
        peak = max((max(t["peak_rss_mib"] or 0, t["child_peak_rss_mib"] or 0) for t in top["tasks"].values()), default=None)
        figs.append(Figure(f"largest task process at {top['scale']} (CeleryExecutor, each task its own process)", peak,
                           "MiB", "<=", RSS_TARGET_MIB, digits=0))
    return figs


def render_scale_dag(r: dict) -> str:
    """Section 2b: per task and scale, running seconds and peak RSS so far; the deployed runs after."""
    runs = r["runs"]
    tasks = list(dict.fromkeys(t for x in runs for t in x["tasks"]))
    rows = [[f"`{t}`"] + [v for x in runs for v in (x["tasks"].get(t, {}).get("running"),
                                                   fmt(x["tasks"].get(t, {}).get("peak_rss_mib"), 0))] for t in tasks]
    rows.append(["**whole run (wall, process peak RSS from `wait4`)**"]
                + [v for x in runs for v in (x["wall"], fmt(x["maxrss_mib"], 0))])
    out = [
        f"The whole DAG as `make run` runs it, a fresh AIRFLOW_HOME and empty artifacts per scale, conf "
        f"`{json.dumps(r['conf'])}`: **training capped at one epoch** (the default recipe early-stops over up to its "
        "preset's epochs; at 100x that is hours on 2 cores; one epoch is what the per-record growth needs). "
        "*running* = the task instance's `start_date` -> `end_date`. Under `dags test` every task runs in one "
        "process, so a task's figure is that process's peak RSS *so far* (sampled from `/proc/<pid>/status` VmHWM "
        "up to the task's end), not the task's own.",
        "",
        md_table(["task"] + [c for x in runs for c in (f"{x['scale']} running (s)", f"{x['scale']} peak RSS so far (MiB)")],
                 rows),
        "",
        "Wall per train record: " + "; ".join(f"{x['scale']} {x['wall'] / x['n_train'] * 1000:.2f} ms" for x in runs) + ".",
    ]
    if r.get("deployed"):
        out += ["", deployed.render_scales(r["deployed"])]
    elif r.get("deployed_error"):
        out += ["", f"The same runs on the CeleryExecutor deployment failed: `{r['deployed_error'][:300]}`."]
    return "\n".join(out)
