"""``make bench``: measure the pipeline and write BENCHMARKS.md from this one invocation.

Sections (each runs in its own try/except: a failing section is reported in the document, the others
still run):

1. ``overhead``: a bare script (bench/bare_pipeline.py) vs the whole ``turkey_training`` DAG through
   ``airflow dags test``, same data/recipe/seed, median of N, with a breakdown of the DAG's time.
2. ``scale``: parse+validate, pad, one training epoch, scoring at 1x/10x/100x Kaggle size, each stage
   in its own process (seconds, records/s, peak RSS).
3. ``quality``: seed recipe vs default recipe vs logistic baseline over seeds 42-46 on both demo
   families (presence, temporal), on the validation split and on a separate labelled held-out file;
   mean ± sd and the worst seed, and how many seeds pass the default accuracy gate.
4. ``gpu``: GPU training throughput (only reported as not measured when no GPU is present).

Usage::

    source scripts/env.sh && .venv/bin/python bench/run_bench.py               # full -> BENCHMARKS.md
    .venv/bin/python bench/run_bench.py --quick                                # tiny sizes, smoke test
    .venv/bin/python bench/run_bench.py --sections overhead,quality --scales 1,10

Only a full run (all sections, default sizes) writes BENCHMARKS.md unless ``--output`` says otherwise;
other runs write bench/out/BENCHMARKS-<tag>.md. Generated data and logs stay under bench/out/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import deployed, gpu_check  # noqa: E402
from bench.common import (  # noqa: E402
    KAGGLE_TEST,
    KAGGLE_TRAIN,
    OUT,
    REPO,
    child_env,
    ensure_demo,
    fmt,
    git_state,
    machine_info,
    md_table,
    mean_sd,
    median,
    package_versions,
    run_proc,
)
from bench.dag_log import DAG_ID, dag_breakdown  # noqa: E402

SECTIONS = ("overhead", "deployed", "scale", "scale_dag", "quality", "gpu")
SECTION_NUMBER = {"overhead": "1", "deployed": "1b", "scale": "2", "scale_dag": "2b", "quality": "3", "gpu": "4"}
PY = sys.executable
AIRFLOW = str(Path(sys.executable).parent / "airflow")
TUTORIAL = {"Flatten": 92.31, "attention": 93.31}  # the tutorial's validation accuracy (%) on the real data


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ================================================================================================ config
def make_config(a) -> dict:
    if a.quick:
        cfg = {
            "tag": "quick",
            "overhead_data": ("quick-300", 300, 300),
            "repeats": a.repeats or 1,
            "epochs": 2,
            "scales": [("q300", 300, 300), ("q600", 600, 600)],
            "seeds": [42],
            "dag_scales": [("q300", 300, 300), ("q600", 600, 600)],
            "quality_data": ("quick-300", 300, 300),
            "holdout_n": 300,
            "quality_average_of": 1,
        }
    else:
        mult = [int(x) for x in (a.scales or "1,10,100").split(",") if x.strip()]
        cfg = {
            "tag": "full",
            "overhead_data": ("kaggle-1x", KAGGLE_TRAIN, KAGGLE_TEST),
            "repeats": a.repeats or 3,
            "epochs": None,
            "scales": [(f"{m}x", KAGGLE_TRAIN * m, KAGGLE_TEST * m) for m in mult],
            "seeds": [42, 43, 44, 45, 46],
            "dag_scales": [(f"{m}x", KAGGLE_TRAIN * m, KAGGLE_TEST * m) for m in (a.dag_scales or [10, 100])],
            "quality_data": ("kaggle-1x", KAGGLE_TRAIN, KAGGLE_TEST),
            "holdout_n": KAGGLE_TEST,
            "quality_average_of": 3,
        }
    cfg["train_max_steps"] = a.train_max_steps
    cfg["workers"] = a.workers
    return cfg


def _data(spec, workers: int) -> dict:
    name, n_train, n_test = spec
    name = f"kaggle-{n_train // KAGGLE_TRAIN}x" if n_train % KAGGLE_TRAIN == 0 and n_test % KAGGLE_TEST == 0 else name
    t = time.perf_counter()
    d = ensure_demo(name, n_train, n_test, seed=0, workers=workers)
    log(f"data {name}: {'cached' if d['cached'] else f'generated in {time.perf_counter() - t:.1f}s'}")
    return d


# ================================================================================================ 1. overhead
def airflow_template(root: Path) -> tuple[Path, float]:
    """A migrated, empty AIRFLOW_HOME to copy per measurement (``db migrate`` timed once)."""
    home = root / "template-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = _airflow_env(home, root / "unused-data", root / "unused-artifacts")
    p = run_proc([AIRFLOW, "db", "migrate"], env=env, timeout=900, log_path=root / "db-migrate.log").check()
    return home, p.wall


def _airflow_env(home: Path, data: Path, artifacts: Path) -> dict:
    return child_env(
        AIRFLOW_HOME=home,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__DAGS_FOLDER=REPO / "dags",
        AIRFLOW__CORE__PLUGINS_FOLDER=REPO / "plugins",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        TURKEY_DATA_ROOT=data,
        TURKEY_ARTIFACTS_ROOT=artifacts,
    )


def _fresh_dag_env(template: Path, root: Path, data: dict) -> tuple[dict, Path]:
    shutil.rmtree(root, ignore_errors=True)
    home = root / "airflow"
    shutil.copytree(template, home)
    cfg = home / "airflow.cfg"
    if cfg.is_file():
        cfg.write_text(cfg.read_text().replace(str(template), str(home)))
    landing = root / "data" / "landing"
    landing.mkdir(parents=True)
    shutil.copyfile(data["train"], landing / "train.json")
    shutil.copyfile(data["test"], landing / "test.json")
    return _airflow_env(home, root / "data", root / "artifacts"), home / "airflow.db"


def section_overhead(cfg) -> dict:
    data = _data(cfg["overhead_data"], cfg["workers"])
    root = OUT / "overhead"
    root.mkdir(parents=True, exist_ok=True)
    log("overhead: airflow db migrate (template home)")
    template, migrate_s = airflow_template(root)
    conf = {} if cfg["epochs"] is None else {"epochs": cfg["epochs"], "min_val_accuracy": 0.0}
    bare_cmd_extra = [] if cfg["epochs"] is None else ["--epochs", str(cfg["epochs"])]
    bare, dag = [], []
    for i in range(cfg["repeats"]):
        order = ("bare", "dag") if i % 2 == 0 else ("dag", "bare")
        for kind in order:
            if kind == "bare":
                out = root / f"bare-{i}"
                shutil.rmtree(out, ignore_errors=True)
                p = run_proc(
                    [
                        PY,
                        REPO / "bench" / "bare_pipeline.py",
                        "--train",
                        data["train"],
                        "--test",
                        data["test"],
                        "--out",
                        out,
                        *bare_cmd_extra,
                    ],
                    env=child_env(),
                    timeout=1200,
                    log_path=root / f"bare-{i}.log",
                ).check()
                r = p.result()
                bare.append({"wall": p.wall, "maxrss_mib": p.maxrss_mib, **r})
                log(f"overhead: bare #{i + 1}: {p.wall:.1f}s ({r['epochs_run']} epochs)")
            else:
                env, db = _fresh_dag_env(template, root / f"dag-{i}", data)
                p = run_proc(
                    # exactly what `make run` runs (scripts/run_local.sh)
                    [
                        PY,
                        REPO / "scripts" / "airflow_fast_exit.py",
                        "dags",
                        "test",
                        "turkey_training",
                        "--conf",
                        json.dumps(conf),
                    ],
                    env=env,
                    timeout=1500,
                    log_path=root / f"dag-{i}.log",
                ).check()
                b = dag_breakdown(p.output, p.started_at, p.wall, db)
                if not b["ok"]:
                    raise RuntimeError(
                        f"DAG run #{i + 1} did not succeed: { ({k: v['state'] for k, v in b['ti'].items()}) }"
                    )
                dag.append({"wall": p.wall, "maxrss_mib": p.maxrss_mib, **b})
                log(f"overhead: dag #{i + 1}: {p.wall:.1f}s ({b['ml'].get('epochs_run')} epochs)")
    return {"data": data, "migrate_seconds": migrate_s, "bare": bare, "dag": dag, "conf": conf}


def render_overhead(r: dict) -> str:
    bare, dag = r["bare"], r["dag"]
    bw, dw = median([x["wall"] for x in bare]), median([x["wall"] for x in dag])
    ratio = dw / bw
    d = r["data"]
    out = [
        f"Data: demo data, {d['n_train']:,} train / {d['n_test']:,} test records (seed {d['seed']}); "
        f"recipe `default`, split seed 42, DAG conf `{json.dumps(r['conf'])}`. "
        f"Each side ran {len(bare)} time(s), interleaved; every DAG run got a fresh `AIRFLOW_HOME` "
        "(a copy of a freshly migrated, empty metadata DB: no champion) and fresh data/artifacts roots.",
        "",
        md_table(
            ["", "run 1..n wall (s)", "median wall (s)", "epochs run", "fit (s, median)", "peak RSS (MiB, median)"],
            [
                [
                    "bare script (fresh process)",
                    ", ".join(fmt(x["wall"], 1) for x in bare),
                    bw,
                    "/".join(str(x["epochs_run"]) for x in bare),
                    median([x["times"]["fit"] for x in bare]),
                    median([x["maxrss_mib"] for x in bare]),
                ],
                [
                    "`airflow dags test turkey_training` as `make run` runs it (in-process, scripts/airflow_fast_exit.py)",
                    ", ".join(fmt(x["wall"], 1) for x in dag),
                    dw,
                    "/".join(str(x["ml"].get("epochs_run")) for x in dag),
                    median([x["ml"].get("fit") for x in dag]),
                    median([x["maxrss_mib"] for x in dag]),
                ],
            ],
        ),
        "",
        f"**Ratio DAG / bare = {ratio:.2f}** (target <= 1.5: **{'met' if ratio <= 1.5 else 'NOT met'}**). "
        f"`airflow db migrate` of an empty SQLite DB, not included above (once per installation): "
        f"{r['migrate_seconds']:.1f} s.",
        "",
        "Where the time goes (medians over the runs; DAG rows from the `dags test` log timestamps, XCom figures from "
        "the metadata DB's `xcom` table; bare rows from the script's own timers):",
        "",
    ]

    def bm(key):
        return median([x["times"].get(key) for x in bare])

    def dm(fn):
        vals = []
        for x in dag:
            try:
                vals.append(fn(x))
            except (KeyError, TypeError):
                pass
        return median(vals)

    tasks = list(dag[0]["phases"])
    body = lambda x, t: x["phases"][t]["body"]  # noqa: E731
    gates = [t for t in tasks if t not in ("validate", "split_and_pad", "train", "evaluate")]

    def airflow_tasks(x):  # everything per task that is not the task body, except the first task's "pre"
        tot = 0.0
        for i, t in enumerate(x["phases"]):
            ph = x["phases"][t]
            tot += (ph["pre"] if i else 0.0) + ph["post"] + ph["gap"]
        return tot

    first = tasks[0] if tasks else "validate"
    rows = [
        [
            "process start-up: interpreter + imports until the first log line (bare: until its first timer, "
            "plus its exit)",
            median([x["wall"] - x["in_process_seconds"] for x in bare]) + bm("import_ml"),
            dm(lambda x: x["startup"]),
        ],
        ["DAG-bag parse (x2), serialisation to the DB, DAG-run creation", 0.0, dm(lambda x: x["parse_and_create_run"])],
        [
            f"Airflow before the first task body (`{first}`): in-process execution API start-up, TI start",
            0.0,
            dm(lambda x: x["phases"][first]["pre"]),
        ],
        [
            "read input JSON (bare) / `validate` body: parse + GX rules + Data Docs, npz, sha256",
            bm("read_json"),
            dm(lambda x: body(x, "validate")),
        ],
        [
            "    of which `validate_file` train + test (ml log; GX import + context start-up in the train figure)",
            "",
            dm(lambda x: x["ml"]["validate_train"] + x["ml"]["validate_test"]),
        ],
        [
            "split + pad (bare: includes the sklearn import) / `split_and_pad` body (+ npz load/save)",
            bm("split_pad"),
            dm(lambda x: body(x, "split_and_pad")),
        ],
        [
            "TF import + fit + score + submission (bare) / `train` body",
            bm("import_tf") + bm("build_and_fit") + bm("score_and_write"),
            dm(lambda x: body(x, "train")),
        ],
        [
            "    of which before `fit` (TF import; DAG also: npz load, registry, device probe)",
            bm("import_tf"),
            dm(lambda x: x["ml"]["train_before_fit"]),
        ],
        ["    of which `model.fit` (same recipe, data and seed both sides)", bm("fit"), dm(lambda x: x["ml"]["fit"])],
        [
            "    of which after `fit`: predict + submission (DAG also: save model, history, curves.png)",
            bm("score_and_write"),
            dm(lambda x: x["ml"]["train_after_fit"]),
        ],
        ["`evaluate` body (metrics + logistic baseline)", 0.0, dm(lambda x: body(x, "evaluate"))],
        [f"gate/registry bodies ({', '.join(gates)})", 0.0, dm(lambda x: sum(body(x, t) for t in gates))],
        [
            "Airflow around the other tasks: TI start/render (pre), XCom pushes + state (post), gaps",
            0.0,
            dm(airflow_tasks),
        ],
        ["after `DagRun Finished` until the process exited (interpreter shutdown)", 0.0, dm(lambda x: x["teardown"])],
        ["**total wall**", bw, dw],
    ]
    for row in rows:
        row.append(row[2] - row[1] if isinstance(row[1], float) and isinstance(row[2], float) else "")
    out.append(md_table(["component", "bare (s)", "DAG (s)", "DAG extra (s)"], rows))
    extra = {
        "startup": rows[0][3],
        "parse": rows[1][3],
        "first": rows[2][3],
        "validate": rows[3][3],
        "around": rows[-3][3],
        "teardown": rows[-2][3],
    }
    if all(isinstance(v, float) for v in extra.values()) and isinstance(bw, float) and isinstance(dw, float):
        fixed = extra["startup"] + extra["parse"] + extra["first"] + extra["around"] + extra["teardown"]
        added = dw - bw
        out += [
            "",
            f"**Where the gap comes from.** Of the {added:.1f} s the DAG run adds, {fixed:.1f} s are fixed costs of "
            f"Airflow's `dags test` itself (process start-up, DAG parsing and run creation, the in-process "
            f"execution API before the first task, per-task bookkeeping, interpreter teardown) and "
            f"{extra['validate']:.1f} s are the data-validation gate (Great Expectations import and rules, Data Docs) "
            "that the bare script does not run. Neither grows with the data while the bare work does, so the ratio "
            f"is <= 1.5 once the bare pipeline takes >= 2 x {added:.1f} = {2 * added:.0f} s (arithmetic from this "
            "table, not a separate measurement).",
        ]
    out += [
        "",
        "Per task, medians over the DAG runs: *pre* = `[DAG TEST] starting` -> the body's `started` marker, *body* = "
        "the seconds in the body's `finished` marker (`ml.task_marker`, our code's own clock), *post* = XCom pushes and state update, *gap* = to the next task's start.",
        "",
    ]
    trow = []
    for t in tasks:
        cells = [f"`{t}`"]
        for k in ("segment", "pre", "body", "post", "gap"):
            cells.append(dm(lambda x, t=t, k=k: x["phases"][t][k]))
        for k in ("rows", "bytes"):
            cells.append(dm(lambda x, t=t, k=k: x["xcom"].get(t, {}).get(k, 0)))
        trow.append(cells)
    out.append(
        md_table(["task", "segment (s)", "pre (s)", "body (s)", "post (s)", "gap (s)", "XCom rows", "XCom bytes"], trow)
    )
    dag_vals = ", ".join(
        f"{x['ml']['val_accuracy']:.4f} / {x['ml']['val_auc']:.4f}" for x in dag if "val_auc" in x["ml"]
    )
    bare_vals = ", ".join(f"{x['val_accuracy']:.4f} / {x['val_auc']:.4f}" for x in bare)
    out += ["", f"Validation accuracy / ROC AUC, DAG runs: {dag_vals}; bare runs: {bare_vals}."]
    return "\n".join(out)


# ================================================================================================ 2. scale
from ml.train import PRESETS  # noqa: E402

STAGE_ORDER = ("validate_train", "validate_test", "pad", "train_epoch", "score")
STAGE_LABEL = {
    "validate_train": "parse+validate train (`validate_file`)",
    "validate_test": "parse+validate test (`validate_file`)",
    "pad": "split + pad train and test",
    "train_epoch": f"one training epoch (default recipe, batch {PRESETS['default'].batch_size}, incl. validation pass)",
    "score": "scoring (`predict` on padded test)",
}


def _stage(name: str, args: dict, log_path: Path, timeout: float = 1800) -> dict:
    stage = "validate" if name.startswith("validate") else name
    p = run_proc(
        [PY, "-m", "bench.stages", stage, "--args", json.dumps(args)],
        env=child_env(),
        timeout=timeout,
        log_path=log_path,
    ).check()
    return {"process_wall": p.wall, **p.result()}


def section_scale(cfg) -> dict:
    out = {"scales": []}
    for name, n_train, n_test in cfg["scales"]:
        data = _data((name, n_train, n_test), cfg["workers"])
        work = OUT / "scale" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        row = {"name": name, "n_train": n_train, "n_test": n_test, "data": data, "stages": {}, "errors": {}}
        out["scales"].append(row)
        for st in STAGE_ORDER:
            args = {"work": str(work)}
            if st.startswith("validate"):
                split = st.split("_")[1]
                args.update(file=data[split], split=split)
            if st == "train_epoch" and cfg["train_max_steps"]:
                args["max_steps"] = cfg["train_max_steps"]
            try:
                row["stages"][st] = _stage(st, args, OUT / "scale" / f"{name}-{st}.log")
                s = row["stages"][st]
                log(f"scale {name} {st}: {s['seconds']:.2f}s, peak RSS {s['peak_rss_mib']:.0f} MiB")
            except Exception as exc:  # noqa: BLE001 - record and go on with the next stage/scale
                row["errors"][st] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
                log(f"scale {name} {st}: FAILED {type(exc).__name__}")
        for st in ("validate_train", "validate_test"):
            for f in work.glob(f"validation-{st.split('_')[1]}"):
                shutil.rmtree(f, ignore_errors=True)
        for f in work.glob("*.npz"):  # big, regenerated on every run
            f.unlink()
    return out


def render_scale(r: dict) -> str:
    scales = r["scales"]
    rows = []
    for s in scales:
        d = s["data"]
        gen = "cached from an earlier run" if d["cached"] else f"generated in {d['gen_seconds']:.0f} s"
        for st in STAGE_ORDER:
            x = s["stages"].get(st)
            if x is None:
                rows.append([s["name"], STAGE_LABEL[st], "FAILED", "", "", "", s["errors"].get(st, "")[:200]])
                continue
            note = []
            if st == "validate_train":
                note.append(f"file {x['file_mib']:.0f} MiB; data {gen}")
            if st == "validate_test":
                note.append(f"file {x['file_mib']:.0f} MiB")
            if st.startswith("validate"):
                note.append(
                    f"GX import + context start-up before it {x.get('gx_startup_seconds', 0):.1f} s (not included); "
                    f"then npz save {x['save_npz_seconds']:.2f} s"
                )
            if st == "pad":
                note.append(
                    f"sklearn import {x.get('import_sklearn_seconds', 0):.1f} s and npz load {x['load_seconds']:.2f} s "
                    f"before, npz save {x['save_seconds']:.2f} s after (not included)"
                )
            if st == "train_epoch":
                note.append(
                    f"{x['steps_per_epoch']:,} steps, {x['epoch_seconds'] / x['steps_per_epoch'] * 1000:.0f} ms/step "
                    f"(incl. first-step tracing and the validation pass over {x['n_val']:,} records)"
                )
                if x["extrapolated"]:
                    note.append(f"**extrapolated** from {x['measured_steps']} steps")
            if st == "score":
                note.append(f"TF import + model load {x['import_and_load_model_seconds']:.1f} s")
            secs = x.get("epoch_seconds", x["seconds"]) if st == "train_epoch" else x["seconds"]
            rec = x["n_train"] if st == "train_epoch" else x["records"]
            rows.append(
                [
                    s["name"],
                    STAGE_LABEL[st],
                    f"{rec:,}",
                    secs,
                    f"{rec / secs:,.0f}" if secs else "—",
                    x["peak_rss_mib"],
                    f"{x['process_wall']:.1f} s; " + "; ".join(note),
                ]
            )
    out = [
        "Each stage ran in its own process (peak RSS = that process's VmHWM: interpreter, libraries and data). "
        "*seconds* = the operation only; the process wall time (imports included) is in the notes. "
        "Train sizes are 1,195 x scale, test 1,196 x scale.",
        "",
        md_table(
            ["scale", "stage", "records", "seconds", "records/s", "peak RSS (MiB)", "process wall; notes"],
            rows,
            ["l", "l", "r", "r", "r", "r", "l"],
        ),
        "",
    ]
    # Growth factors between consecutive scales.
    grow = []
    for st in STAGE_ORDER:
        cells = [STAGE_LABEL[st]]
        for a, b in zip(scales, scales[1:], strict=False):
            xa, xb = a["stages"].get(st), b["stages"].get(st)
            if xa and xb:
                sa = xa.get("epoch_seconds", xa["seconds"])
                sb = xb.get("epoch_seconds", xb["seconds"])
                cells.append(f"x{sb / sa:.1f} (records x{b['n_train'] / a['n_train']:.0f})")
            else:
                cells.append("—")
        grow.append(cells)
    if len(scales) > 1:
        out += [
            "Growth of *seconds* between scales (linear = the records factor; fixed start-up costs make the "
            "first step smaller):",
            "",
            md_table(
                ["stage"] + [f"{a['name']} -> {b['name']}" for a, b in zip(scales, scales[1:], strict=False)],
                grow,
                ["l"] + ["r"] * (len(scales) - 1),
            ),
            "",
        ]
    # Targets.
    big = scales[-1]
    t = []
    if len(scales) > 1:
        a, b = scales[-2], scales[-1]
        lin = []
        for st in STAGE_ORDER:
            xa, xb = a["stages"].get(st), b["stages"].get(st)
            if xa and xb:
                f = (xb.get("epoch_seconds", xb["seconds"]) / xa.get("epoch_seconds", xa["seconds"])) / (
                    b["n_train"] / a["n_train"]
                )
                lin.append((st, f))
        if lin:
            bad = [(st, f) for st, f in lin if f > 1.25]
            detail = "; ".join(
                f"{STAGE_LABEL[st]} x{f:.2f} ({b['stages'][st].get('epoch_seconds', b['stages'][st]['seconds']):.1f} s "
                f"at {b['name']})"
                for st, f in lin
            )
            t.append(
                f"- Linear growth ({a['name']} -> {b['name']}; criterion: seconds per record grows by at most 25%): "
                f"**{'met' if not bad else 'NOT met for ' + ', '.join(STAGE_LABEL[st] for st, _ in bad)}**. "
                f"Per-record cost factor per stage: {detail}."
            )
    v = big["stages"].get("validate_train")
    if v:
        cold = v["seconds"] + v.get("gx_startup_seconds", 0.0)
        vt = big["stages"].get("validate_test", {})
        t.append(
            f"- Validation of {big['name']} ({big['n_train']:,} train records) <= 30 s: "
            f"**{'met' if cold <= 30 else 'NOT met'}** ({cold:.1f} s cold, i.e. `validate_file` "
            f"{v['seconds']:.1f} s + GX start-up {v.get('gx_startup_seconds', 0.0):.1f} s; the test file: "
            f"{vt.get('seconds', float('nan')):.1f} s + {vt.get('gx_startup_seconds', float('nan')):.1f} s)."
        )
    rss = [(st, x["peak_rss_mib"]) for st, x in big["stages"].items()]
    if rss:
        over = [(st, m) for st, m in rss if m > 2048]
        st, m = max(rss, key=lambda z: z[1])
        t.append(
            f"- Peak RSS at {big['name']} <= 2 GiB: **{'met' if not over else 'NOT met'}** "
            + (
                "(over 2 GiB: " + "; ".join(f"{STAGE_LABEL[s_]} {m_:,.0f} MiB" for s_, m_ in over) + ")."
                if over
                else f"(highest: {STAGE_LABEL[st]}, {m:,.0f} MiB)."
            )
        )
    if any(s["errors"] for s in scales):
        t.append(
            "- Failed stages: "
            + "; ".join(f"{s['name']} {k}: {v[:300]}" for s in scales for k, v in s["errors"].items())
        )
    out += ["Targets:", "", *t]
    return "\n".join(out)


# ================================================================================================ 2b. scale_dag
DAG_SCALE_CONF = {"epochs": 1, "min_val_accuracy": 0.0}  # the training cap of the whole-DAG scale runs
RSS_TARGET_MIB = 2048


def section_scale_dag(cfg) -> dict:
    """The whole ``turkey_training`` DAG (``make run``'s ``airflow dags test`` path) at each of ``cfg['dag_scales']``.

    Per task: body seconds and the process's peak RSS at the body's end, from the ml.task_marker lines;
    training capped by :data:`DAG_SCALE_CONF` (one epoch, no accuracy gate)."""
    root = OUT / "scale_dag"
    root.mkdir(parents=True, exist_ok=True)
    template, _ = airflow_template(root)
    runs = []
    for spec in cfg["dag_scales"]:
        data = _data(spec, cfg["workers"])
        env, db = _fresh_dag_env(template, root / spec[0], data)
        log(f"scale_dag: {spec[0]}: airflow dags test ({spec[1]:,} train records)")
        p = run_proc(
            [
                PY,
                REPO / "scripts" / "airflow_fast_exit.py",
                "dags",
                "test",
                DAG_ID,
                "--conf",
                json.dumps(DAG_SCALE_CONF),
            ],
            env=env,
            timeout=3600,
            log_path=root / f"{spec[0]}.log",
        ).check()
        b = dag_breakdown(p.output, p.started_at, p.wall, db)
        if not b["ok"]:
            raise RuntimeError(
                f"DAG run at {spec[0]} did not succeed: { ({k: v['state'] for k, v in b['ti'].items()}) }"
            )
        runs.append(
            {"scale": spec[0], "n_train": spec[1], "n_test": spec[2], "wall": p.wall, "maxrss_mib": p.maxrss_mib, **b}
        )
        log(f"scale_dag: {spec[0]}: {p.wall:.1f}s, peak RSS {p.maxrss_mib:.0f} MiB")
    return {"conf": DAG_SCALE_CONF, "runs": runs}


def render_scale_dag(r: dict) -> str:
    """Whole-DAG wall, per-task body seconds and running peak RSS per scale; growth per record; targets."""
    runs = r["runs"]
    tasks = list(dict.fromkeys(t for x in runs for t in x["phases"]))
    out = [
        f"The whole DAG as `make run` runs it (`scripts/airflow_fast_exit.py dags test {DAG_ID}`), fresh "
        f"AIRFLOW_HOME and empty artifacts per scale, conf `{json.dumps(r['conf'])}`: **training is capped at one "
        "epoch** (the default recipe early-stops over up to its preset's epochs; at 100x that is tens of minutes "
        "to hours on 2 cores, so the cap keeps the run in minutes; one epoch is what the per-record growth needs). "
        "*body* = the seconds in each task's `ml.task_marker` finished line. **RSS**: under `dags test` every task "
        "runs in one process, so a task's figure is that process's peak RSS *so far* (at the body's end), not the "
        "task's own; the last task's figure is the whole run's peak. Running each task in its own process "
        "(`airflow tasks test` per task) would add a DAG parse and interpreter start per task and was not done.",
        "",
    ]
    head = ["task"] + [c for x in runs for c in (f"{x['scale']} body (s)", f"{x['scale']} peak RSS so far (MiB)")]
    rows = [
        [f"`{t}`"]
        + [v for x in runs for v in (x["phases"].get(t, {}).get("body"), x["phases"].get(t, {}).get("rss_mib"))]
        for t in tasks
    ]
    rows.append(["**whole run (wall, process peak RSS)**"] + [v for x in runs for v in (x["wall"], x["maxrss_mib"])])
    out += [md_table(head, rows), ""]
    per_record = [(x["scale"], x["wall"] / x["n_train"], x) for x in runs]
    out += ["Wall time per train record: " + "; ".join(f"{s} {v * 1000:.2f} ms" for s, v, _ in per_record) + "."]
    if len(runs) >= 2:
        a, b = runs[-2], runs[-1]
        growth = (b["wall"] / b["n_train"]) / (a["wall"] / a["n_train"])
        out += [
            "",
            f"- Linear growth {a['scale']} -> {b['scale']} (criterion: wall per record grows by at most 25%): "
            f"**{'met' if growth <= 1.25 else 'not met'}** (x{growth:.2f} per record; records x{b['n_train'] / a['n_train']:.0f}, "
            f"wall x{b['wall'] / a['wall']:.1f}; fixed start-up costs make the smaller run's per-record cost higher).",
        ]
    top = max(runs, key=lambda x: x["n_train"])
    peak = top["maxrss_mib"]
    out += [
        f"- Peak RSS <= {RSS_TARGET_MIB / 1024:.0f} GiB per task process at {top['scale']}: "
        f"**{'met' if peak <= RSS_TARGET_MIB else 'not met'}** (the one `dags test` process peaked at {peak:,.0f} MiB, "
        "an upper bound for every task).",
    ]
    v = top["ml"].get("validate_train")
    if v is not None:
        out += [
            f"- Parse + validate of the {top['scale']} train file ({top['n_train']:,} records) <= 8 s: "
            f"**{'met' if v <= 8 else 'not met'}** ({v:.1f} s, the `validated ... (train): OK in` line inside the "
            "`validate` body; section 2 breaks the stage down per process)."
        ]
    return "\n".join(out)


# ================================================================================================ 3. quality
QUALITY_FAMILIES = ("presence", "temporal")  # ml.demo.FAMILIES (importing ml.demo here would pull in numpy)


def section_quality(cfg) -> dict:
    _, n_train, _ = cfg["quality_data"]
    out = {"families": {}}
    for family in QUALITY_FAMILIES:
        args = {
            "family": family,
            "n_train": n_train,
            "n_holdout": cfg["holdout_n"],
            "seeds": cfg["seeds"],
            "epochs": cfg["epochs"],
            "average_of": cfg["quality_average_of"],
        }
        log(f"quality, {family} family: {len(cfg['seeds'])} seed(s) x (seed recipe, default recipe, logistic baseline)")
        out["families"][family] = _stage("quality", args, OUT / f"quality-{family}.log", timeout=2400)
    return out


def _quality_family(r: dict) -> tuple[list, dict]:
    """Rows of one family's table and, per model, the aggregate figures the targets use."""
    runs = r["runs"]
    models = list(dict.fromkeys(x["model"] for x in runs))
    rows, agg = [], {}
    for m in models:
        rs = [x for x in runs if x["model"] == m]
        hauc, hacc = [x["holdout"]["roc_auc"] for x in rs], [x["holdout"]["accuracy"] for x in rs]
        vacc = [x["val"]["accuracy"] for x in rs]
        gate = sum(bool(x["val"].get("passes_gate")) for x in rs)
        agg[m] = {
            "auc": mean_sd(hauc),
            "acc": mean_sd(hacc),
            "worst_auc": min(hauc),
            "worst_acc": min(hacc),
            "worst_val_acc": min(vacc),
            "gate": gate,
            "n": len(rs),
        }
        pm = lambda v: f"{v[0]:.4f} ± {v[1]:.4f}"  # noqa: E731
        ep = [x["epochs"] for x in rs if x.get("epochs") is not None]
        kept = [x.get("selected_epoch") for x in rs]
        secs = [x["train_seconds"] for x in rs if "train_seconds" in x]
        rows.append(
            [
                m,
                pm(agg[m]["auc"]),
                pm(agg[m]["acc"]),
                f"{min(hauc):.4f} / {min(hacc):.4f}",
                f"{mean_sd(vacc)[0]:.4f} (worst {min(vacc):.4f})",
                f"{gate}/{len(rs)}",
                f"{sum(x['holdout']['ece'] for x in rs) / len(rs):.4f}" if "ece" in rs[0]["holdout"] else "—",
                "/".join(f"{k}:{e}" if k else str(e) for k, e in zip(kept, ep, strict=False)) if ep else "—",
                median(secs) if secs else "—",
            ]
        )
    return rows, agg


def render_quality(r: dict) -> str:
    fams = r["families"]
    first = next(iter(fams.values()))
    seeds = sorted({x["seed"] for x in first["runs"]})
    gate = 0.85
    out = [
        f"Each demo family (`turkey demo-data --family`): a demo train file of {first['n_train_file']:,} records "
        f"({'Kaggle size' if first['n_train_file'] == KAGGLE_TRAIN else f'Kaggle size: {KAGGLE_TRAIN:,}'}), "
        f"split by the pipeline's own split ({first['n_train']:,} train / {first['n_val']:,} validation, the same for every "
        "seed; the validation part drives early stopping and the LR schedule and is what the accuracy gate scores). "
        f"Held-out: a separate labelled file of {first['n_holdout']:,} records from the same generator and family (rng seed "
        f"{first['holdout_seed']}, ids disjoint from train) that no recipe saw. Seeds {', '.join(map(str, seeds))} "
        "(weights, shuffling): mean ± sample sd, and the **worst seed** (lowest value over the seeds). Accuracy is at "
        f"the published 0.5 threshold; gate = validation accuracy ≥ {gate} (the default `min_val_accuracy`); ECE = "
        "expected calibration error on the held-out file (10 bins). The demo labels carry 4% label noise, so ~96% "
        "accuracy is the ceiling. *presence*: the call pattern is in a few frames (the default family, `make run`); "
        "*temporal*: the order of two events decides the label, so the mean-pooled logistic baseline cannot see it.",
        "",
    ]
    headers = [
        "model",
        "held-out ROC AUC",
        "held-out accuracy",
        "worst seed: held-out AUC / accuracy",
        "validation accuracy",
        "accuracy gate passed",
        "held-out ECE",
        "epochs (kept:run)",
        "train s (median)",
    ]
    targets = []
    for family, res in fams.items():
        rows, agg = _quality_family(res)
        out += [f"**{family} family**", "", md_table(headers, rows), ""]
        d, s, b = (agg.get(m) for m in ("default recipe", "seed recipe", "logistic baseline"))
        if d and s and b:
            ok = d["auc"][0] > s["auc"][0] and d["auc"][0] > b["auc"][0] and d["worst_auc"] > b["auc"][0]
            targets.append(
                f"- {family}: default recipe beats the seed recipe and the logistic baseline on held-out AUC, worst seed "
                f"included: **{'met' if ok else 'NOT met'}** (default {d['auc'][0]:.4f}, worst seed {d['worst_auc']:.4f}; "
                f"seed recipe {s['auc'][0]:.4f}; baseline {b['auc'][0]:.4f}). Default passes the accuracy gate on every "
                f"seed: **{'met' if d['gate'] == d['n'] else 'NOT met'}** ({d['gate']}/{d['n']}, worst validation accuracy "
                f"{d['worst_val_acc']:.4f}; worst held-out accuracy {d['worst_acc']:.4f})."
            )
    out += ["Targets:", "", *targets, ""]
    out += [
        "For context only — **the tutorial's numbers on the real Kaggle data, not ours** (different data, its own "
        f"validation split): validation accuracy {TUTORIAL['Flatten']}% (Flatten model) and "
        f"{TUTORIAL['attention']}% (attention model).",
        "",
        "<details><summary>Per seed</summary>",
        "",
        md_table(
            ["family", "model", "seed", "held-out AUC", "held-out acc", "val AUC", "val acc", "epochs (kept:run)"],
            [
                [
                    family,
                    x["model"],
                    str(x["seed"]),
                    f"{x['holdout']['roc_auc']:.4f}",
                    f"{x['holdout']['accuracy']:.4f}",
                    f"{x['val']['roc_auc']:.4f}",
                    f"{x['val']['accuracy']:.4f}",
                    (f"{x['selected_epoch']}:{x['epochs']}" if x.get("selected_epoch") else str(x["epochs"] or "—")),
                ]
                for family, res in fams.items()
                for x in res["runs"]
            ],
            align=["l", "l"] + ["r"] * 6,
        ),
        "",
        "</details>",
    ]
    return "\n".join(out)


# ================================================================================================ 4. gpu
def section_gpu(cfg) -> dict:
    """The GPU check's saved result (bench/results/gpu_check.json, written by ``python -m bench.gpu_check`` on a
    machine with a GPU), if any, and whether this machine has a GPU at all."""
    have = shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()
    saved = gpu_check.RESULTS_DIR / "gpu_check.json"
    return {"gpu_present": have, "check": json.loads(saved.read_text()) if saved.is_file() else None}


def render_gpu(r: dict) -> str:
    """The GPU check's tables when a result was saved, else why there is none and the command to get one."""
    if r.get("check"):
        return gpu_check.render(r["check"])
    where = "this machine has a GPU" if r["gpu_present"] else "this machine has no GPU"
    return (
        f"**None measured**: no GPU machine was lent to the sessions that produced this file and {where}; "
        "there is no saved GPU check result (`bench/results/gpu_check.json`).\n\n"
        "A session lent a GPU runs the check in one call of under 8 minutes, on the GPU machine from the "
        "repository root: `source scripts/env.sh && python -m bench.gpu_check [--wheelhouse DIR]` "
        "(the lent machines have no internet: `--wheelhouse` / `$TURKEY_WHEELHOUSE` is a folder of wheels for "
        "the `[gpu]` extra, `tensorflow[and-cuda]`; `--skip-install` uses a TensorFlow already installed). It "
        "installs the extra, confirms TensorFlow sees the GPU, proves the GRU runs on the cuDNN kernel (the "
        "`CudnnRNN*` ops in the traced train step, and a `use_cudnn=True` GRU that runs), measures epoch time "
        "and samples/s at batch 32 and 512, mixed precision off and on, at 1x and 100x, and compares CPU and "
        "GPU validation AUC at the same seed (target |Δ| <= 0.005). It writes `bench/results/gpu_check.json` "
        "(and `$OUT/` when set); commit it and run `bench/run_bench.py --sections gpu --splice` to put the "
        "tables here. `python -m bench.gpu_check --cpu-only` is its smoke mode on any machine."
    )


# ================================================================================================ document
RUNNERS = {
    "overhead": (section_overhead, render_overhead, "1. Orchestration overhead: bare script vs the whole DAG"),
    "scale": (section_scale, render_scale, "2. Scale: 1x, 10x, 100x Kaggle size"),
    "scale_dag": (section_scale_dag, render_scale_dag, "2b. Scale: the whole DAG at 10x and 100x"),
    "deployed": (deployed.collect, deployed.render, f"1b. {deployed.TITLE}"),
    "quality": (section_quality, render_quality, "3. Model quality on held-out demo data"),
    "gpu": (section_gpu, render_gpu, "4. GPU training throughput"),
}


def render(meta: dict, results: dict, sections) -> str:
    m = meta["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by {meta['command']} on {meta['date']}; **every number in this file comes from that one run** "
        "(written by `bench/run_bench.py`, not edited by hand — rerun `make bench` to refresh it).",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['ram_gib']:.1f} GiB RAM, {m['os']}, Python {m['python']}; no GPU used. "
        f"Load average at start: {', '.join(f'{x:.2f}' for x in m['loadavg'] or [])}.",
        f"- Code: git {meta['git']}. Mode: {meta['tag']}. Sections run: {', '.join(sections)}.",
        f"- Whole bench wall time: {meta['total_seconds'] / 60:.1f} min.",
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()) + ".",
        "- Every measured step ran in a fresh subprocess (it pays its own imports); generated data, logs and work "
        "folders are under `bench/out/` (git-ignored).",
        "",
    ]
    for name in SECTIONS:
        _, rend, title = RUNNERS[name]
        lines += [f"## {title}", ""]
        if name not in sections:
            lines += ["Not run in this invocation.", ""]
            continue
        res = results.get(name)
        if res is None or "error" in res:
            lines += [
                "**This section failed**; the error, as recorded:",
                "",
                "```",
                (res or {}).get("error", "no result").strip()[-3000:],
                "```",
                "",
            ]
            continue
        try:
            lines += [rend(res["data"]), ""]
        except Exception:  # noqa: BLE001
            lines += ["**Could not render this section**:", "", "```", traceback.format_exc()[-3000:], "```", ""]
        lines += [f"<sub>Section wall time: {res['seconds']:.0f} s.</sub>", ""]
    return "\n".join(lines).rstrip() + "\n"


RELIABILITY_START = "<!-- reliability:start"  # tests.faults.summary.START's prefix
SECTION_HEADING = re.compile(r"^## (\d[a-z]?)\. ", re.M)


def splice_sections(old: str, new: str, sections, meta: dict) -> str:
    """``old`` with the ``sections`` replaced by ``new``'s, each stamped with the run that produced it."""

    def blocks(doc: str) -> dict:
        starts = [(m.start(), m.group(1)) for m in SECTION_HEADING.finditer(doc)]
        ends = [starts[i + 1][0] if i + 1 < len(starts) else len(doc) for i in range(len(starts))]
        kept = doc.find(RELIABILITY_START)  # the fault suite's block (and its marker) is never part of a section
        ends = [kept if a < kept < e else e for (a, _), e in zip(starts, ends, strict=True)]
        return {n: (a, e) for (a, n), e in zip(starts, ends, strict=True)}

    old_blocks, new_blocks = blocks(old), blocks(new)
    out = old
    for name in sorted(sections, key=SECTIONS.index, reverse=True):  # back to front: offsets stay valid
        n = SECTION_NUMBER[name]
        a, b = new_blocks[n]
        heading, _, body = new[a:b].partition("\n")
        stamp = (
            f"*This section was regenerated on its own by {meta['command']} on {meta['date']} (git {meta['git']}, "
            f"load average at start {', '.join(f'{x:.2f}' for x in meta['machine']['loadavg'] or [])}); the rest "
            "of the file comes from the run named at the top.*"
        )
        block = f"{heading}\n\n{stamp}\n{body}"
        if n in old_blocks:
            oa, ob = old_blocks[n]
        else:  # a section new to the file goes before the next one present (or before section 5 / the end)
            later = [
                old_blocks[SECTION_NUMBER[x]][0]
                for x in SECTIONS[SECTIONS.index(name) + 1 :]
                if SECTION_NUMBER[x] in old_blocks
            ]
            tail = [pos for num, (pos, _) in old_blocks.items() if num not in SECTION_NUMBER.values()]
            oa = ob = min(later or tail or [len(out)])
        out = out[:oa] + block.rstrip("\n") + "\n\n" + out[ob:]
    return (
        out.replace(
            "**every number in this file comes from that one run**",
            "**every number in this file comes from that one run, except sections marked as regenerated on their own**",
        ).rstrip()
        + "\n"
    )


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="measure the pipeline; write BENCHMARKS.md")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 epochs, 1 repeat (smoke test)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--scales", default=None, help="scale multipliers for section 2 (default 1,10,100)")
    p.add_argument("--repeats", type=int, default=None, help="runs per side in section 1 (default 3)")
    p.add_argument(
        "--train-max-steps",
        type=int,
        default=None,
        help="section 2: train this many steps per scale and extrapolate to one epoch (default: full epoch)",
    )
    p.add_argument(
        "--dag-scales",
        type=lambda v: [int(x) for x in v.split(",") if x.strip()],
        default=None,
        help="scale multipliers for section 2b, the whole DAG (default 10,100)",
    )
    p.add_argument("--workers", type=int, default=2, help="processes generating big demo files")
    p.add_argument("--output", default=None, help="markdown file to write")
    p.add_argument(
        "--splice",
        action="store_true",
        help="replace only the sections run here in an existing BENCHMARKS.md (or --output), each marked with "
        "its own command, date and commit; the other sections stay as they were",
    )
    a = p.parse_args(argv)
    sections = [s.strip() for s in a.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    cfg = make_config(a)
    full = not a.quick and set(sections) == set(SECTIONS) and not a.scales and not a.repeats and not a.train_max_steps
    output = Path(a.output) if a.output else (REPO / "BENCHMARKS.md" if full else OUT / f"BENCHMARKS-{cfg['tag']}.md")
    if a.splice:
        if a.quick:
            p.error("--splice writes into the published file: not with --quick")
        output = Path(a.output) if a.output else REPO / "BENCHMARKS.md"

    args = argv if argv is not None else sys.argv[1:]
    cmd = "source scripts/env.sh && " + " ".join(
        shlex.quote(x) for x in [".venv/bin/python", "bench/run_bench.py", *args]
    )
    via_make = bool(os.environ.get("MAKELEVEL")) and not args
    meta = {
        "command": f"`make bench` (which runs `{cmd}`)" if via_make else f"`{cmd}`",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "packages": package_versions(),
        "git": git_state(),
        "tag": cfg["tag"] + (" (tiny sizes, NOT representative)" if a.quick else ""),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = {}
    for name in SECTIONS:
        if name not in sections:
            continue
        run, _, title = RUNNERS[name]
        log(f"== {title}")
        ts = time.perf_counter()
        try:
            results[name] = {"data": run(cfg), "seconds": time.perf_counter() - ts}
        except Exception:  # noqa: BLE001 - record and carry on with the next section
            results[name] = {"error": traceback.format_exc(), "seconds": time.perf_counter() - ts}
            log(f"section {name} FAILED:\n{traceback.format_exc()[-1500:]}")
        (OUT / f"results-{cfg['tag']}.json").write_text(json.dumps(results, indent=1, default=str))
    meta["total_seconds"] = time.perf_counter() - t0
    doc = render(meta, results, sections)
    if a.splice:
        doc = splice_sections(output.read_text(encoding="utf-8"), doc, sections, meta)
    if output.is_file():  # the reliability section comes from `make test-faults`, not from this run: keep it
        from tests.faults.summary import END, START

        old = output.read_text(encoding="utf-8")
        if START in old and END in old and START not in doc:
            doc = doc.rstrip("\n") + "\n\n" + START + old.split(START, 1)[1].split(END, 1)[0] + END + "\n"
    write_atomic(output, doc)
    log(f"wrote {output} ({meta['total_seconds'] / 60:.1f} min)")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
