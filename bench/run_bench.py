"""``make bench``: measure the pipeline and write BENCHMARKS.md from this one invocation.

This module collects (runs processes, reads their logs through :mod:`bench.dag_log`, queries Airflow's
tables) into plain dicts, saved as bench/out/results-<tag>.json; :mod:`bench.render` turns them into
Markdown (``--render-only`` renders the saved file again without measuring).

Sections (each runs in its own try/except: a failing section is reported in the document, the others
still run):

1. ``overhead``: a bare script (bench/bare_pipeline.py) vs the whole ``turkey_training`` DAG through
   ``airflow dags test``, same data/recipe/seed, median of N, with a breakdown of the DAG's time.
2. ``scale``: parse+validate, pad, one training epoch, scoring at 1x/10x/100x Kaggle size, each stage
   in its own process (seconds, records/s, peak RSS).
3. ``quality``: seed recipe vs default recipe vs logistic baseline over seeds 42-46 on both demo
   families (presence, temporal), on the validation split and on a separate labelled held-out file;
   mean ± sd and the worst seed, and how many seeds pass the default accuracy gate.
1b. ``deployed``: the CeleryExecutor deployment vs the bare script (:mod:`bench.deployed`).
2b. ``scale_dag``: the whole DAG at 10x and 100x (one epoch), per-task body seconds and peak RSS.
4. ``gpu``: the saved result of :mod:`bench.gpu_check` (run on a machine lent a GPU), else "none measured".

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
    git_state,
    machine_info,
    package_versions,
    run_proc,
)
from bench.dag_log import DAG_ID, dag_breakdown  # noqa: E402
from bench.render import SECTIONS, STAGE_ORDER, render, splice_sections, title  # noqa: E402 - render/splice re-exported

PY = sys.executable
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def log(msg: str) -> None:
    """Print one timestamped progress line of the bench."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ================================================================================================ config
def make_config(a) -> dict:
    """The bench settings (sizes, repeats, epochs, seeds) for ``--quick`` or a full run from the CLI args."""
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


def run_dag_test(env: dict, db: Path, conf: dict, log_path: Path, timeout: float, label: str):
    """One ``turkey_training`` run exactly as ``make run`` runs it (``airflow dags test`` through
    scripts/airflow_fast_exit.py): the finished process and its :func:`dag_breakdown`; raises unless it succeeded."""
    p = run_proc(
        [PY, REPO / "scripts" / "airflow_fast_exit.py", "dags", "test", DAG_ID, "--conf", json.dumps(conf)],
        env=env,
        timeout=timeout,
        log_path=log_path,
    ).check()
    b = dag_breakdown(p.output, p.started_at, p.wall, db)
    if not b["ok"]:
        raise RuntimeError(f"{label} did not succeed: { ({k: v['state'] for k, v in b['ti'].items()}) }")
    return p, b


def section_overhead(cfg) -> dict:
    """Section 1: the bare script and the DAG (``make run``'s ``dags test``) alternately, N times each."""
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
                p, b = run_dag_test(env, db, conf, root / f"dag-{i}.log", 1500, f"DAG run #{i + 1}")
                dag.append({"wall": p.wall, "maxrss_mib": p.maxrss_mib, **b})
                log(f"overhead: dag #{i + 1}: {p.wall:.1f}s ({b['ml'].get('epochs_run')} epochs)")
    return {"data": data, "migrate_seconds": migrate_s, "bare": bare, "dag": dag, "conf": conf}


# ================================================================================================ 2. scale


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
    """Section 2: each stage in its own process at each of ``cfg['scales']``."""
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


# ================================================================================================ 2b. scale_dag
DAG_SCALE_CONF = {"epochs": 1, "min_val_accuracy": 0.0}  # the training cap of the whole-DAG scale runs


def section_scale_dag(cfg) -> dict:
    """The whole ``turkey_training`` DAG (``make run``'s ``airflow dags test`` path) at each of ``cfg['dag_scales']``.

    Per task: body seconds and the process's peak RSS at the body's end, from the ml.task_marker lines;
    training capped by :data:`DAG_SCALE_CONF` (one epoch, no accuracy gate). Then the same scales once each
    on the CeleryExecutor deployment (:func:`bench.deployed.collect_scales`), for each task's own peak RSS."""
    root = OUT / "scale_dag"
    root.mkdir(parents=True, exist_ok=True)
    template, _ = airflow_template(root)
    runs = []
    for spec in cfg["dag_scales"]:
        data = _data(spec, cfg["workers"])
        env, db = _fresh_dag_env(template, root / spec[0], data)
        log(f"scale_dag: {spec[0]}: airflow dags test ({spec[1]:,} train records)")
        p, b = run_dag_test(env, db, DAG_SCALE_CONF, root / f"{spec[0]}.log", 3600, f"DAG run at {spec[0]}")
        runs.append(
            {"scale": spec[0], "n_train": spec[1], "n_test": spec[2], "wall": p.wall, "maxrss_mib": p.maxrss_mib, **b}
        )
        log(f"scale_dag: {spec[0]}: {p.wall:.1f}s, peak RSS {p.maxrss_mib:.0f} MiB")
    out = {"conf": DAG_SCALE_CONF, "runs": runs}
    # The same runs on the CeleryExecutor deployment: every task in its own process, so per-task peak RSS.
    log("scale_dag: the same scales on the deployment (CeleryExecutor), one run each")
    try:
        out["deployed"] = deployed.collect_scales([(s[0], _data(s, cfg["workers"])) for s in cfg["dag_scales"]],
                                                  DAG_SCALE_CONF)
    except Exception as exc:  # noqa: BLE001 -- e.g. no PostgreSQL/Redis: the dags-test table still stands
        log(f"scale_dag: deployed runs failed: {exc}")
        out["deployed_error"] = f"{type(exc).__name__}: {exc}"
    return out


# ================================================================================================ 3. quality
QUALITY_FAMILIES = ("presence", "temporal")  # ml.demo.FAMILIES (importing ml.demo here would pull in numpy)


def section_quality(cfg) -> dict:
    """Section 3: the quality sweep (bench.quality) over seeds and demo families."""
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


# ================================================================================================ 4. gpu
def section_gpu(cfg) -> dict:
    """The GPU check's saved result (bench/results/gpu_check.json, written by ``python -m bench.gpu_check`` on a
    machine with a GPU), if any, and whether this machine has a GPU at all."""
    have = shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()
    saved = gpu_check.RESULTS_DIR / "gpu_check.json"
    return {"gpu_present": have, "check": json.loads(saved.read_text()) if saved.is_file() else None}


# ================================================================================================ document
COLLECTORS = {
    "overhead": section_overhead,
    "deployed": deployed.collect,
    "scale": section_scale,
    "scale_dag": section_scale_dag,
    "quality": section_quality,
    "gpu": section_gpu,
}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def collect(cfg: dict, sections, meta: dict, saved: Path) -> dict:
    """Run the ``sections``' collectors in order (a failing one is recorded, the others still run); the
    results and ``meta`` are saved to ``saved`` after each section, so rendering can be redone from them."""
    t0 = time.perf_counter()
    results = {}
    for name in SECTIONS:
        if name not in sections:
            continue
        log(f"== {title(name)}")
        ts = time.perf_counter()
        try:
            results[name] = {"data": COLLECTORS[name](cfg), "seconds": time.perf_counter() - ts}
        except Exception:  # noqa: BLE001 - record and carry on with the next section
            results[name] = {"error": traceback.format_exc(), "seconds": time.perf_counter() - ts}
            log(f"section {name} FAILED:\n{traceback.format_exc()[-1500:]}")
        meta["total_seconds"] = time.perf_counter() - t0
        saved.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    return results


def main(argv=None) -> int:
    """The CLI: collect the chosen sections (or load saved results), render, write or splice the file."""
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
    p.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: render bench/out/results-<tag>.json (saved by the last run of this mode) again",
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
    saved = OUT / f"results-{cfg['tag']}.json"
    if a.render_only:
        if not saved.is_file():
            p.error(f"--render-only: no saved results at {saved}")
        prior = json.loads(saved.read_text())
        meta, results = prior["meta"], prior["results"]
        sections = [s for s in SECTIONS if s in results]
    else:
        results = collect(cfg, sections, meta, saved)
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
