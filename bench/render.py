"""``make bench``'s rendering: pure functions from the collected results (plain dicts, as saved in
bench/out/results-<tag>.json) to BENCHMARKS.md's Markdown, and the splice of single sections into it.

Nothing here runs a process or reads a log: :mod:`bench.run_bench` collects, this module only renders, so a
saved result can be rendered again (``bench/run_bench.py --render-only``) without measuring anything.
"""

from __future__ import annotations

import json
import logging
import re
import traceback

from bench import deployed, gpu_check
from bench.common import KAGGLE_TRAIN, fmt, md_table, mean_sd, median
from bench.dag_log import DAG_ID
from ml.train import PRESETS

log = logging.getLogger(__name__)

TUTORIAL = {"Flatten": 92.31, "attention": 93.31}  # the tutorial's validation accuracy (%) on the real data


def render_overhead(r: dict) -> str:
    """Section 1: bare vs DAG walls and ratio, where the DAG's time goes, the per-task phases."""
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


STAGE_ORDER = ("validate_train", "validate_test", "pad", "train_epoch", "score")


STAGE_LABEL = {
    "validate_train": "parse+validate train (`validate_file`)",
    "validate_test": "parse+validate test (`validate_file`)",
    "pad": "split + pad train and test",
    "train_epoch": f"one training epoch (default recipe, batch {PRESETS['default'].batch_size}, incl. validation pass)",
    "score": "scoring (`predict` on padded test)",
}


def render_scale(r: dict) -> str:
    """Section 2: each stage per scale (seconds, records/s, peak RSS), growth between scales, targets."""
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
                if x.get("parse_workers", 1) > 1:
                    note.append(
                        f"parsed by {x['parse_workers']} processes (this one and forked workers; the largest "
                        f"worker peaked at {x.get('worker_peak_rss_mib', 0):,.0f} MiB)"
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
            f"- Parse + validate of the {big['name']} train file ({big['n_train']:,} records) <= 8 s, cold (GX "
            f"start-up included, as in the 17.9 s the target was set against): "
            f"**{'met' if cold <= 8 else 'NOT met'}** ({cold:.1f} s = `validate_file` {v['seconds']:.1f} s + GX "
            f"start-up {v.get('gx_startup_seconds', 0.0):.1f} s, paid once per process; with GX already started, "
            f"as for the test file in the DAG's `validate` task: {v['seconds']:.1f} s, "
            f"**{'met' if v['seconds'] <= 8 else 'NOT met'}**; the test file: "
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


RSS_TARGET_MIB = 2048


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
    dep = r.get("deployed") or []
    if dep:
        out += ["", _deployed_scale_table(dep), ""]
        dtop = max(dep, key=lambda x: x["n_train"])
        task, peak = max(
            ((t, max(x.get("rss_mib") or 0, x.get("child_rss_mib") or 0)) for t, x in dtop["tasks"].items()),
            key=lambda z: z[1],
        )
        out += [
            f"- Peak RSS <= {RSS_TARGET_MIB / 1024:.0f} GiB per task process at {dtop['scale']} (on the deployment, "
            f"each task its own process): **{'met' if peak <= RSS_TARGET_MIB else 'not met'}** (highest: `{task}`, "
            f"{peak:,.0f} MiB). Under `dags test` the one process peaked at {top['maxrss_mib']:,.0f} MiB: every task's "
            "memory in one process (`make run` is the embedded demo path, not the way to run 100x).",
        ]
    else:
        peak = top["maxrss_mib"]
        why = f" (the deployed runs failed: {r['deployed_error']})" if r.get("deployed_error") else ""
        out += [
            f"- Peak RSS <= {RSS_TARGET_MIB / 1024:.0f} GiB per task process at {top['scale']}: "
            f"**{'met' if peak <= RSS_TARGET_MIB else 'not met'}** (the one `dags test` process peaked at "
            f"{peak:,.0f} MiB, an upper bound for every task){why}.",
        ]
    v = top["ml"].get("validate_train")
    if v is not None and top["n_train"] >= 100 * KAGGLE_TRAIN:
        out += [
            f"- Parse + validate of the {top['scale']} train file ({top['n_train']:,} records) <= 8 s: "
            f"**{'met' if v <= 8 else 'not met'}** ({v:.1f} s, the `validated ... (train): OK in` line inside the "
            "`validate` body of the `dags test` run, GX start-up included as the task's first file; section 2 breaks "
            "the stage down per process)."
        ]
    elif v is not None:
        out += [
            f"- Parse + validate of the {top['scale']} train file ({top['n_train']:,} records): {v:.1f} s (the "
            "`validated ... (train): OK in` line inside the `validate` body). The <= 8 s target is for the 100x file, "
            "which this run did not reach."
        ]
    return "\n".join(out)


def _deployed_scale_table(dep: list[dict]) -> str:
    """Section 2b's deployed runs: per task and scale, body seconds, the task process's own peak RSS and its
    largest child's (the parse workers), and the trigger -> end wall."""
    tasks = list(dict.fromkeys(t for x in dep for t in x["tasks"]))
    head = ["task"] + [
        c for x in dep for c in (f"{x['scale']} body (s)", f"{x['scale']} peak RSS (MiB)", f"{x['scale']} largest child (MiB)")
    ]
    rows = [
        [f"`{t}`"]
        + [
            v
            for x in dep
            for v in (
                x["tasks"].get(t, {}).get("body"),
                x["tasks"].get(t, {}).get("rss_mib"),
                x["tasks"].get(t, {}).get("child_rss_mib") or "-",
            )
        ]
        for t in tasks
    ]
    rows.append(["**trigger -> run end (wall)**"] + [v for x in dep for v in (x["wall"], "", "")])
    return (
        "The same conf once per scale on the CeleryExecutor deployment (section 1b's set-up, started once for all "
        "scales), where every task runs in its own process: *peak RSS* is that task process's own high-water mark "
        "and *largest child* that of its largest child process (the fast reader's parse workers, forked per file), "
        "both from the task-body line.\n\n" + md_table(head, rows)
    )


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
    """Section 3: seed vs default recipe vs logistic baseline per demo family, validation and held-out."""
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


SECTIONS = ("overhead", "deployed", "scale", "scale_dag", "quality", "gpu")
SECTION_NUMBER = {"overhead": "1", "deployed": "1b", "scale": "2", "scale_dag": "2b", "quality": "3", "gpu": "4"}
TITLES = {
    "overhead": "Orchestration overhead: bare script vs the whole DAG",
    "deployed": deployed.TITLE,
    "scale": "Scale: 1x, 10x, 100x Kaggle size",
    "scale_dag": "Scale: the whole DAG at 10x and 100x",
    "quality": "Model quality on held-out demo data",
    "gpu": "GPU training throughput",
}
RENDERERS = {
    "overhead": render_overhead,
    "deployed": deployed.render,
    "scale": render_scale,
    "scale_dag": render_scale_dag,
    "quality": render_quality,
    "gpu": render_gpu,
}


def title(name: str) -> str:
    """A section's numbered heading text, e.g. ``2b. Scale: the whole DAG at 10x and 100x``."""
    return f"{SECTION_NUMBER[name]}. {TITLES[name]}"


def render(meta: dict, results: dict, sections) -> str:
    """The whole BENCHMARKS.md from ``meta`` and the collected ``results`` (a failed section shows its error)."""
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
        rend = RENDERERS[name]
        lines += [f"## {title(name)}", ""]
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
