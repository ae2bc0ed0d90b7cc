"""Sections 6 and 6b: batch scoring (the ``turkey_scoring`` DAG) -- its task body against a bare Keras script,
a whole ``make score`` against a whole ``make run``, a 100x batch in bounded memory, and the evidence for the
skew threshold.

    python -m bench.scoring [--quick] [--skew]            # alone: bench/out/scoring-<tag>.md (--skew: 6b only)
    python -m bench.run_bench --sections scoring,skew --splice
    python -m bench.scoring --args '{"kind": "body"|"bare", ...}'   # one measured process (the driver runs these)

Section 6 trains one candidate (``python -m ml.cli train``), registered and promoted in a registry built once
per run; each measured process gets a copy. *The body*: what ``plugins/turkey_airflow/scoring.py`` does without
Airflow (:func:`ml.scoring.job.score_batches`); *the bare script*: Keras loads the same ``model.keras``, predicts
the same test file into a CSV. Both timed as whole fresh processes, interleaved. ``make run`` then ``make
score`` run as ``make`` runs them (``scripts/run_local.sh``) on one fresh AIRFLOW_HOME, data and artifacts root.
Section 6b needs only NumPy: :func:`ml.scoring.skew.skew` of shifted and unshifted demo batches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from bench import common
from bench.common import OUT, Figure, child_env, fmt, log, md_table, median, run_module, run_proc

T_START = time.perf_counter()
RATIO_TARGET, MAKE_TARGET, RSS_TARGET_GIB = 1.3, 0.25, 1.5
VERSION, BATCH_ID = "vbench-scoring", "bench-batch"  # the champion's version, the landed batch's id
SKEW_SIZES, SKEW_SEEDS, SKEW_TRAIN = (50, 300, 1196), (1, 2, 3, 4, 5), 900


def settings(cfg: dict) -> dict:
    """Section 6's sizes from run_bench's config: tiny ones for ``--quick``, Kaggle size and 100x otherwise."""
    if cfg["tag"] == "quick":
        return {"data": (300, 300), "batch": 300, "big": ("quick", 16_000), "repeats": cfg["repeats"],
                "train_args": ["--epochs", "2", "--min-records", "50", "--min-val-accuracy", "0"],
                "conf": {"epochs": 2, "min_val_accuracy": 0.0}}
    k_test = common.KAGGLE_TEST
    return {"data": (common.KAGGLE_TRAIN, k_test), "batch": k_test, "big": ("100x", 100 * k_test),
            "repeats": max(cfg["repeats"], 5), "train_args": [], "conf": {}}


# ------------------------------------------------------------------------------------------------ children
def child_body(a: dict) -> dict:
    """The scoring task's body without Airflow: one :func:`~ml.scoring.job.score_batches` run on ``a["registry"]``."""
    from ml.config import ScoringConfig
    from ml.registry import Registry
    from ml.scoring.job import score_batches

    t_import = time.perf_counter()
    work = Path(a["work"])
    report = score_batches(Registry(a["registry"]), ScoringConfig(), Path(a["batch_dir"]),
                           Path(a["test_file"]) if a.get("test_file") else None, "bench-scoring", work / "champion",
                           report_dir=work / "validation" / "batches")
    t_end = time.perf_counter()
    batches = [{"batch": b["batch"], "status": b["status"], **{k: b.get("record", {}).get(k) for k in ("rows", "path")},
                "excess": b.get("record", {}).get("skew", {}).get("excess")} for b in report["batches"]]
    return {"champion": report["champion"], "batches": batches, "in_process_seconds": t_end - T_START,
            "times": {"imports": t_import - T_START, "score_batches": t_end - t_import}}


def child_bare(a: dict) -> dict:
    """The reference: Keras loads ``a["model"]``, the test file is read, padded, predicted and written as a CSV."""
    import csv

    import keras

    import ml  # noqa: F401  (registers the model's custom layer with Keras)
    from ml.data import pad_frames, read_records

    times, t = {}, time.perf_counter()
    times["imports"] = t - T_START
    model = keras.models.load_model(a["model"], compile=False)
    times["load"], t = time.perf_counter() - t, time.perf_counter()
    test = read_records(a["test_file"])
    x = pad_frames(test.frames, test.lengths)
    times["read"], t = time.perf_counter() - t, time.perf_counter()
    probs = model.predict(x, batch_size=1024, verbose=0).reshape(-1)
    times["predict"], t = time.perf_counter() - t, time.perf_counter()
    with open(a["out"], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["vid_id", "is_turkey"])
        w.writerows(zip(test.ids, (f"{float(p):.6f}" for p in probs), strict=True))
    times["write"] = time.perf_counter() - t
    return {"rows": len(test), "times": times, "in_process_seconds": time.perf_counter() - T_START}


def _child(a: dict) -> dict:
    """One measured process of section 6 (``a["kind"]``: body or bare)."""
    return {"body": child_body, "bare": child_bare}[a["kind"]](a)


# ------------------------------------------------------------------------------------------------ data, registry
def ensure_batch(n: int, seed: int) -> str:
    """An unlabelled batch of ``n`` demo clips under bench/out/data/, generated once and cached
    (:func:`ml.demo.generate_batch` up to 5,000 clips, :func:`bench.common.chunked_records` above)."""
    from ml.demo import generate_batch, write_json

    d = OUT / "data" / f"batch-{n}-{seed}"
    path, meta = d / "batch.json", {"n": n, "seed": seed, "gen": common.GEN_VERSION}
    if not common._cached(d / "meta.json", meta, path):
        t0 = time.perf_counter()
        d.mkdir(parents=True, exist_ok=True)
        if n <= 5000:
            generate_batch(path, n, seed)
        else:
            write_json(common.chunked_records(n, seed, 2, False), path)
        (d / "meta.json").write_text(json.dumps(meta))
        log(f"batch of {n:,} clips: generated in {time.perf_counter() - t0:.0f}s")
    return str(path)


def build_registry(root: Path, data: dict, s: dict) -> dict:
    """A registry whose champion is one candidate trained on ``data`` (``python -m ml.cli train``)."""
    from ml.fsutil import read_json
    from ml.registry import Registry
    from ml.scoring import forward

    candidate = root / "candidate"
    cmd = [common.PY, "-m", "ml.cli", "train", "--train", data["train"], "--test", data["test"], "--out", candidate,
           *s["train_args"]]
    p = run_proc(cmd, env=child_env(), timeout=3600, log_path=root / "train.log").check()
    reg = Registry(root / "registry")
    reg.register(VERSION, candidate, read_json(candidate / "manifest.json"))
    reg.promote(VERSION, reason="bench.scoring: the champion whose scoring is measured")
    model = reg.fetch_model(VERSION, root)
    log(f"candidate trained in {p.wall:.0f}s; champion {VERSION}")
    return {"registry": str(root / "registry"), "model": model, "train_wall": p.wall,
            "forward": "NumPy" if forward.load(Path(model)) is not None else "Keras"}


def _published(r: dict, n: int) -> int:
    """``n``: the rows of the one batch the body run scored, or a RuntimeError when it did not publish them."""
    (b,) = r["batches"]
    if b["status"] != "published" or b["rows"] != n:
        raise RuntimeError(f"the scoring run did not publish {n} rows: {b}")
    return n


def _read_csv(path) -> dict[str, float]:
    rows = Path(path).read_text(encoding="utf-8").splitlines()[1:]
    return {vid: float(p) for vid, p in (r.rsplit(",", 1) for r in rows)}


# ------------------------------------------------------------------------------------------------ collect
def collect_body_vs_bare(root: Path, data: dict, reg: dict, repeats: int) -> dict:
    """The body and the bare script, ``repeats`` times each, interleaved; both score the test file."""
    body, bare = [], []
    for i in range(repeats):
        for kind in ("body", "bare") if i % 2 == 0 else ("bare", "body"):
            d = root / f"{kind}-{i}"
            if kind == "body":
                (d / "batches").mkdir(parents=True)
                args = {"kind": kind, "registry": str(shutil.copytree(reg["registry"], d / "registry")),
                        "batch_dir": str(d / "batches"), "test_file": data["test"], "work": str(d / "work")}
            else:
                d.mkdir(parents=True)
                args = {"kind": kind, "model": reg["model"], "test_file": data["test"], "out": str(d / "scores.csv")}
            r = run_module("bench.scoring", args, root / f"{kind}-{i}.log", timeout=1200)
            if kind == "body":
                _published(r, data["n_test"])
            (body if kind == "body" else bare).append(r)
            log(f"{kind}: {r['process_wall']:.1f}s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    a, b = _read_csv(body[-1]["batches"][0]["path"]), _read_csv(root / f"bare-{repeats - 1}" / "scores.csv")
    return {"body": body, "bare": bare, "max_abs_diff": max(abs(a[k] - b[k]) for k in b),
            "same_ids": a.keys() == b.keys()}


def make_env(home: Path, root: Path, conf: dict) -> dict:
    """The environment of ``make run``/``make score`` on ``root``: its own AIRFLOW_HOME, data and artifacts."""
    from bench.overhead import airflow_env

    env = airflow_env(home, root)
    for name in ("TURKEY_CONF", "TURKEY_REGISTRY_URL"):
        env.pop(name, None)
    if conf:
        env["TURKEY_CONF"] = json.dumps(conf)
    return env


def collect_make(root: Path, data: dict, s: dict) -> dict:
    """``make run`` then ``make score`` (one new batch and the test file) on one fresh environment."""
    home, landing = root / "airflow", root / "data" / "landing"
    (landing / "batches").mkdir(parents=True)
    for split in ("train", "test"):
        shutil.copyfile(data[split], landing / f"{split}.json")
    env, script = make_env(home, root, s["conf"]), common.REPO / "scripts" / "run_local.sh"
    run = run_proc(["bash", script], env=env, timeout=3600, log_path=root / "make-run.log").check()
    log(f"make run: {run.wall:.1f}s")
    shutil.copyfile(ensure_batch(s["batch"], 7), landing / "batches" / f"{BATCH_ID}.json")
    score = run_proc(["bash", script, "--dag", "turkey_scoring"], env=env, timeout=1800,
                     log_path=root / "make-score.log").check()
    log(f"make score: {score.wall:.1f}s")
    text = (home / "last-run.log").read_text(encoding="utf-8", errors="replace")
    return {"conf": s["conf"], "batch_size": s["batch"], "run": {"wall": run.wall, "maxrss_mib": run.maxrss_mib},
            "score": {"wall": score.wall, "maxrss_mib": score.maxrss_mib},
            "parts": score_breakdown(text, score.started_at, score.wall),
            "published": [" ".join(x[4:].split()) for x in score.output.splitlines() if x.startswith("==> scores of")]}


def collect_big(root: Path, reg: dict, s: dict) -> dict:
    """The body on one large batch alone (no test file), in a fresh process: peak RSS, wall, records/s."""
    label, n = s["big"]
    path = ensure_batch(n, 100)
    (root / "batches").mkdir(parents=True)
    os.symlink(path, root / "batches" / f"big-{label}.json")
    args = {"kind": "body", "registry": str(shutil.copytree(reg["registry"], root / "registry")),
            "batch_dir": str(root / "batches"), "test_file": None, "work": str(root / "work")}
    r = run_module("bench.scoring", args, root / "big.log", timeout=3600)
    rows = _published(r, n)
    log(f"{n:,} clips: {r['process_wall']:.1f}s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    from ml.scoring.predict import STREAM_ABOVE

    return {"label": label, "n": n, "file_mib": os.path.getsize(path) / 2**20,
            "streamed": os.path.getsize(path) > STREAM_ABOVE, **r,
            "records_per_s": rows / r["process_wall"], "records_per_s_scoring": rows / r["times"]["score_batches"]}


def collect(cfg: dict) -> dict:
    """Section 6: the registry once, then each measurement (one that fails is recorded, the others still run)."""
    s, root = settings(cfg), OUT / "scoring"
    shutil.rmtree(root, ignore_errors=True)
    data = common.ensure_demo(*s["data"])
    out = {"data": data, "repeats": s["repeats"], "registry": build_registry(root / "registry", data, s)}
    parts = {"body_vs_bare": lambda: collect_body_vs_bare(root / "body", data, out["registry"], s["repeats"]),
             "make": lambda: collect_make(root / "make", data, s),
             "big": lambda: collect_big(root / "big", out["registry"], s)}
    for name, fn in parts.items():
        try:
            out[name] = fn()
        except Exception:  # noqa: BLE001 - recorded; the next measurement still runs
            out[name] = {"error": traceback.format_exc()}
            log(f"scoring: {name} FAILED:\n{out[name]['error'][-1500:]}")
    return out


# ------------------------------------------------------------------------------------------------ the log
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) \[\s*\w+\s*\] (.*)$")
SCORED = re.compile(r"^batch (\S+) \((\d+) records\) scored by (\S+)")
#: The landmarks of a ``make score`` run's log, in order: (substring or regex of the message, part, what it is).
MARKS = [
    (None, "process start -> first log line", "bash + scripts/env.sh, interpreter, scripts.run_local, Airflow import"),
    ("Database migration done", "-> migration done", "`airflow db migrate` of the fresh SQLite DB"),
    ("Created dag run", "-> DAG run created", "the DAG bag filled (every DAG file parsed), DAGs written, run created"),
    ("Task started", "-> task instance running", "`dags test` starting the task until the execution API records it"),
    (re.compile(r"^champion \S+;"), "-> body's first line (`champion ...`)",
     "task runner, the body's imports, the inputs hashed, the plan"),
    (SCORED, "-> batch {0} ({1} records) scored", "validate (test-file rules), predict, skew, keep"),
    ("DagRun Finished", "-> DAG run finished", "publish under the registry lock, asset events, XCom, states"),
]


def log_events(text: str) -> list[tuple[float, str]]:
    """``(POSIX time, message)`` of each timestamped line of an Airflow log (continuation lines skipped)."""
    return [(datetime.fromisoformat(m.group(1)).timestamp(), m.group(2)) for line in text.splitlines()
            if (m := LOG_LINE.match(line))]


def score_breakdown(text: str, started_at: float, wall: float) -> list[dict]:
    """Where a ``make score`` wall went, from its ``last-run.log``: one part per landmark of :data:`MARKS`
    found in order (a missing one's time falls into the next part; every ``scored by`` line is a part), then
    the process's exit. The parts add up to the wall."""
    events, marks, i = log_events(text), [], 0
    if events:
        marks.append((events[0][0], *MARKS[0][1:]))
    for pattern, part, what in MARKS[1:]:
        if pattern is SCORED:
            found = [(k, m) for k in range(i, len(events)) if (m := SCORED.search(events[k][1]))]
            for j, (k, m) in enumerate(found):
                first = "once per run: model load, the validation engine's start-up; " if j == 0 else ""
                marks.append((events[k][0], part.format(*m.groups()), first + what))
            i = found[-1][0] + 1 if found else i
            continue
        hit = pattern.search if isinstance(pattern, re.Pattern) else lambda msg, sub=pattern: sub in msg
        k = next((k for k in range(i, len(events)) if hit(events[k][1])), None)
        if k is not None:
            marks.append((events[k][0], part, what))
            i = k + 1
    out, prev = [], started_at
    for t, part, what in marks:
        out.append({"part": part, "seconds": t - prev, "what": what})
        prev = t
    out.append({"part": "-> process exit", "seconds": started_at + wall - prev,
                "what": "scripts.run_local's summary of the published scores, exit"})
    return out


# ------------------------------------------------------------------------------------------------ render
def _failed(part: dict | None) -> str | None:
    if part is None or "error" not in part:
        return None
    return "**This measurement failed**: `" + part["error"].strip().splitlines()[-1][:300] + "`"


def _ratio(a, b):
    return median([x["process_wall"] for x in a]) / median([x["process_wall"] for x in b])


def figures(r: dict) -> list[Figure]:
    """Section 6's headlines: body / bare, make score / make run, the large batch's peak RSS."""
    n, bb, mk, big = r["data"]["n_test"], r.get("body_vs_bare", {}), r.get("make", {}), r.get("big", {})
    ratio = _ratio(bb["body"], bb["bare"]) if "body" in bb else None
    make = mk["score"]["wall"] / mk["run"]["wall"] if "score" in mk else None
    label = f"{big['label']} batch, {big['n']:,} clips" if "n" in big else "100x batch"
    return [Figure(f"scoring task body / bare Keras script wall ({n:,} clips, fresh processes, median)", ratio, "x",
                   "<=", RATIO_TARGET),
            Figure(f"`make score` / `make run` wall (a {mk.get('batch_size', n):,}-clip batch and the test file)", make,
                   "x", "<=", MAKE_TARGET),
            Figure(f"peak RSS scoring a {label} (fresh process)",
                   big["peak_rss_mib"] / 1024 if "peak_rss_mib" in big else None, "GiB", "<=", RSS_TARGET_GIB)]


def _times(rows, key):
    return median([x["times"][key] for x in rows])


def _walls(rows) -> list:
    return [", ".join(fmt(x["process_wall"], 1) for x in rows), median([x["process_wall"] for x in rows])]


def _render_body(bb: dict) -> list[str]:
    work = ("load", "read", "predict", "write")
    rows = [["body (`score_batches`)", *_walls(bb["body"]), _times(bb["body"], "imports"),
             _times(bb["body"], "score_batches"), median([x["peak_rss_mib"] for x in bb["body"]])],
            ["bare Keras script", *_walls(bb["bare"]), _times(bb["bare"], "imports"),
             sum(_times(bb["bare"], k) for k in work), median([x["peak_rss_mib"] for x in bb["bare"]])]]
    timers = ", ".join(f"{k} {_times(bb['bare'], k):.2f} s" for k in ("imports", *work))
    return [md_table(["", "walls (s)", "median wall (s)", "imports (s)", "the work (s)", "peak RSS (MiB)"], rows), "",
            f"Ratio of the medians: **{_ratio(bb['body'], bb['bare']):.2f}x**. Bare script's own timers (median): "
            f"{timers}. The two CSVs: same ids {bb['same_ids']}, largest probability difference "
            f"{bb['max_abs_diff']:.2e}."]


def _render_make(mk: dict) -> list[str]:
    published = "; ".join(f"`{x}`" for x in mk["published"])
    parts = [[p["part"], p["seconds"], p["what"]] for p in mk["parts"]] + [["**total wall**", mk["score"]["wall"], ""]]
    return [md_table(["", "wall (s)", "peak RSS (MiB)"], [
                [f"`make run` (conf `{json.dumps(mk['conf'])}`)", mk["run"]["wall"], mk["run"]["maxrss_mib"]],
                ["`make score`", mk["score"]["wall"], mk["score"]["maxrss_mib"]]]), "",
            f"Ratio: **{mk['score']['wall'] / mk['run']['wall']:.2f}x**. What `make score` published: {published}.", "",
            "Where the `make score` wall goes (from `$AIRFLOW_HOME/last-run.log`'s timestamps and the process's own "
            "start and exit; the parts add up to the wall):", "",
            md_table(["part", "seconds", "what it is"], parts, "lrl")]


def _render_big(big: dict) -> list[str]:
    return [md_table(["batch", "file (MiB)", "reader", "wall (s)", "`score_batches` (s)", "records/s (wall)",
                      "records/s (`score_batches`)", "peak RSS (MiB)"],
                     [[f"{big['label']}: {big['n']:,} clips", big["file_mib"],
                       "streaming" if big["streamed"] else "whole file", big["process_wall"],
                       big["times"]["score_batches"], fmt(big["records_per_s"], 0),
                       fmt(big["records_per_s_scoring"], 0), big["peak_rss_mib"]]])]


def render(r: dict) -> str:
    """Section 6: the body against the bare script, ``make score`` against ``make run`` and where the scoring
    run's wall goes, the large batch (a measurement that failed says so)."""
    d, reg = r["data"], r["registry"]
    out = [f"Data: demo data, {d['n_train']:,} train / {d['n_test']:,} test clips (seed {d['seed']}). The champion: "
           f"one candidate of `python -m ml.cli train` ({reg['train_wall']:.0f} s), registered and promoted in a "
           "registry built once; each measured process gets a copy. The published model is scored by the "
           f"**{reg['forward']}** forward pass (`ml.scoring.predict.load_model`)."]
    texts = {
        "body_vs_bare": (_render_body, "**The task body against a bare script.** *Body*: "
                         "`ml.scoring.job.score_batches` as `plugins/turkey_airflow/scoring.py` calls it, without "
                         "Airflow (the test file as batch `kaggle-test`, no other batch; validation, skew, the "
                         "registry's store and publish included). "
                         "*Bare*: `import ml`, `keras.models.load_model(path, compile=False)`, `read_records`, "
                         "`pad_frames`, `predict`, a CSV. Whole fresh processes (`python -m bench.scoring --args ...`, "
                         f"interpreter start-up included), {r['repeats']} of each, interleaved."),
        "make": (_render_make, "**`make score` against `make run`.** Both as `make` runs them (`bash "
                 "scripts/run_local.sh`, with `--dag turkey_scoring` for the scoring run) on one fresh AIRFLOW_HOME, "
                 "data and artifacts root under bench/out: `make run` first (it publishes the champion), then one new "
                 "batch in `data/landing/batches/`, then `make score`."),
        "big": (_render_big, "**A large batch.** The body on one batch alone (no test file) in a fresh process; "
                "peak RSS from `wait4`."),
    }
    for key, (fn, text) in texts.items():
        part = r.get(key)
        out += ["", text, ""] + ([_failed(part)] if _failed(part) else fn(part) if part else ["Not measured."])
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ skew (6b)
def _arrays(records):
    import numpy as np

    return (np.concatenate([np.asarray(r["audio_embedding"], dtype=np.float64) for r in records]),
            np.array([len(r["audio_embedding"]) for r in records]))


def _features(frames, lengths):
    import numpy as np

    from ml.data import pad_frames
    from ml.scoring.skew import pooled

    return pooled(pad_frames(np.clip(frames, 0, 255).astype(np.uint8), lengths), lengths)


SHIFTS = {"unshifted": lambda f: f, "+3": lambda f: f + 3, "+10": lambda f: f + 10, "x0.9": lambda f: (f * 0.9).round()}


def collect_skew(cfg: dict | None = None, sizes=SKEW_SIZES, seeds=SKEW_SEEDS, n_train: int = SKEW_TRAIN) -> dict:
    """Section 6b: :func:`ml.scoring.skew.skew` of demo batches of each size and seed, unshifted, shifted
    (every value +3, +10, x0.9, clipped to 0-255) and of the temporal family, against the profile of
    ``n_train`` presence training records. Cheap (NumPy only): the same in quick and full runs."""
    import numpy as np

    from ml.config import ScoringConfig
    from ml.demo import make_records
    from ml.scoring.skew import skew, training_profile

    profile = training_profile(_features(*_arrays(make_records(n_train, np.random.default_rng(1), True, set()))))
    runs = []
    for n in sizes:
        for seed in seeds:
            frames, lengths = _arrays(make_records(n, np.random.default_rng([seed, n]), False, set()))
            for case, shift in SHIFTS.items():
                runs.append({"case": case, "seed": seed, **skew(profile, _features(shift(frames), lengths))})
            temporal = make_records(n, np.random.default_rng([seed, n, 1]), False, set(), family="temporal")
            runs.append({"case": "temporal", "seed": seed, **skew(profile, _features(*_arrays(temporal)))})
    return {"n_train": n_train, "max_skew": ScoringConfig().max_skew, "sizes": list(sizes), "seeds": list(seeds),
            "runs": runs}


def skew_rows(r: dict) -> list[dict]:
    """Per case and size: the mean, min and max excess over the seeds and how many are above ``max_skew``."""
    out = []
    for case in dict.fromkeys(x["case"] for x in r["runs"]):
        for n in r["sizes"]:
            xs = [x for x in r["runs"] if x["case"] == case and x["n"] == n]
            ex = [x["excess"] for x in xs]
            out.append({"case": case, "n": n, "mean": sum(ex) / len(ex), "min": min(ex), "max": max(ex),
                        "over": sum(e > r["max_skew"] for e in ex), "of": len(ex),
                        "dims": sum(x["shifted_dims"] for x in xs) / len(xs)})
    return out


def figures_skew(r: dict) -> list[Figure]:
    """Section 6b's headlines: the default threshold against the unshifted batches and the +10 shift."""
    ex = lambda case: [x["excess"] for x in r["runs"] if x["case"] == case]  # noqa: E731
    sizes = "/".join(f"{n:,}" for n in r["sizes"])
    return [Figure(f"skew excess of unshifted batches, highest ({sizes} clips, {len(r['seeds'])} seeds)",
                   max(ex("unshifted")), "", "<=", r["max_skew"], digits=4),
            Figure(f"skew excess of batches shifted +10, lowest ({sizes} clips)", min(ex("+10")), "", ">",
                   r["max_skew"], digits=4)]


def render_skew(r: dict) -> str:
    """Section 6b: the excess per case and batch size against the default ``max_skew``."""
    table = skew_rows(r)
    rows = [[x["case"], f"{x['n']:,}", fmt(x["mean"], 4), fmt(x["min"], 4), fmt(x["max"], 4), f"{x['over']}/{x['of']}",
             fmt(x["dims"], 1)] for x in table]
    cases = lambda test: ", ".join(c for c in dict.fromkeys(x["case"] for x in table)  # noqa: E731
                                   if all(test(x) for x in table if x["case"] == c)) or "none"
    return "\n".join([
        f"`ml.scoring.skew.skew` (the *excess*: mean PSI over the 128 dimensions minus the sampling-noise level) of "
        f"demo batches of {', '.join(f'{n:,}' for n in r['sizes'])} clips, seeds {', '.join(map(str, r['seeds']))}, "
        f"against the profile of {r['n_train']:,} presence training records (seed 1). *unshifted*: drawn like the "
        "training data; *+3*, *+10*, *x0.9*: the same batches with every value shifted (clipped to 0-255); "
        "*temporal*: the other demo family. The default `ScoringConfig().max_skew` is "
        f"**{r['max_skew']}**. NumPy only: the same in quick and full runs.", "",
        md_table(["case", "clips", "mean excess", "min", "max", f"> {r['max_skew']}", "dims with PSI > 0.25 (mean)"],
                 rows, "lrrrrrr"), "",
        f"Above `max_skew` in every batch of every size: {cases(lambda x: x['over'] == x['of'])}; in none: "
        f"{cases(lambda x: not x['over'])}."])


# ------------------------------------------------------------------------------------------------ CLI
def main(argv=None) -> int:
    """Sections 6 and 6b alone (``--skew``: 6b only) through ``python -m bench.run_bench --output
    bench/out/scoring-<tag>.md``; with ``--args``, one measured process."""
    import argparse

    args = sys.argv[1:] if argv is None else list(argv)
    if "--args" in args:
        return common.child_main(_child, args)
    p = argparse.ArgumentParser(description="BENCHMARKS.md sections 6 and 6b: batch scoring")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--skew", action="store_true", help="only the skew threshold's evidence (section 6b)")
    a = p.parse_args(args)
    import subprocess  # run_bench imports this module: it runs as its own process

    out = OUT / f"scoring-{'quick' if a.quick else 'full'}.md"
    rc = subprocess.call([common.PY, "-m", "bench.run_bench", "--sections", "skew" if a.skew else "scoring,skew",
                          *(["--quick"] if a.quick else []), "--output", str(out)], cwd=common.REPO)
    if a.skew and out.is_file():
        print(out.read_text(encoding="utf-8"))
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
