"""Section 2: the pipeline's stages at 1x, 10x and 100x Kaggle size, each stage in its own process, so its
peak RSS (``wait4`` of that process: interpreter, libraries and data) is the stage's.

    python -m bench.scale --args '{"stage": STAGE, "work": DIR, ...}'    # one stage (the driver runs these)

Stages, run in this order on one work folder per scale: ``validate`` (:func:`ml.validation.validate_file` on
the train file, then on the test file, each in a fresh process: parse + GX rules + Data Docs; the GX start-up
timed apart), ``pad`` (the pipeline's split by vid_id hash and padding, :func:`ml.prepare.split_arrays`),
``train_epoch`` (one epoch of the default recipe, validation pass included) and ``score`` (load the model,
predict the padded test array). *seconds* is the operation only; loads, saves and imports are timed apart.
"""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

from bench.common import OUT, Figure, child_main, ensure_demo, log, md_table, run_module

STAGES = ("validate_train", "validate_test", "pad", "train_epoch", "score")
LABELS = {"validate_train": "parse+validate train (`validate_file`)", "validate_test": "parse+validate test (`validate_file`)",
          "pad": "split + pad train and test", "train_epoch": "one training epoch (default recipe, incl. validation pass)",
          "score": "scoring (`predict` on padded test)"}
PARSE_TARGET_S, RSS_TARGET_MIB, GROWTH_TARGET = 8.0, 2048, 1.25


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def stage_validate(a: dict) -> dict:
    """``validate_file`` on one file (GX started first, timed apart); its arrays saved for ``pad``."""
    from ml.data import save_arrays
    from ml.validation import validate_file
    from ml.validation.engine import engine

    work, split = Path(a["work"]), a["split"]
    _, gx = _timed(engine)  # GX import and context start-up, once per process
    out, seconds = _timed(lambda: validate_file(a["file"], split, report_dir=work / f"validation-{split}", min_records=1))
    if not out.ok:
        raise SystemExit(f"validation failed: {[f.message for f in out.failures][:3]}")
    r = out.records
    labels = {"labels": r.labels} if split == "train" else {}
    _, save = _timed(lambda: save_arrays(work / f"{split}.npz", ids=r.ids, frames=r.frames, lengths=r.lengths, **labels))
    return {"seconds": seconds, "records": len(r), "gx_startup_seconds": gx, "save_seconds": save,
            "file_mib": Path(a["file"]).stat().st_size / 2**20,
            "worker_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def stage_pad(a: dict) -> dict:
    """The pipeline's split and padding of the saved arrays; saves ``split.npz`` and ``test_padded.npz``."""
    from ml.data import load_arrays, pad_frames, save_arrays
    from ml.prepare import split_arrays

    work = Path(a["work"])
    (tr, te), load = _timed(lambda: (load_arrays(work / "train.npz"), load_arrays(work / "test.npz")))
    t = time.perf_counter()
    d = split_arrays(tr["frames"], tr["lengths"], tr["labels"], tr["ids"], 0.25)
    x_test = pad_frames(te["frames"], te["lengths"])
    seconds = time.perf_counter() - t
    _, save = _timed(lambda: (save_arrays(work / "split.npz", **d), save_arrays(work / "test_padded.npz", x=x_test)))
    return {"seconds": seconds, "records": len(tr["ids"]) + len(x_test), "load_seconds": load, "save_seconds": save}


def stage_train_epoch(a: dict) -> dict:
    """One epoch of the default recipe on ``split.npz`` (validation pass included); saves the model."""
    import math

    from ml.config import make_recipe
    from ml.data import load_arrays
    from ml.train import fit, save_model

    work = Path(a["work"])
    d = load_arrays(work / "split.npz")
    recipe = make_recipe("default", epochs=1)
    model, _, seconds = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], recipe)
    save_model(model, work / "model.keras")
    return {"seconds": seconds, "records": len(d["y_train"]), "n_val": len(d["y_val"]), "batch_size": recipe.batch_size,
            "steps": math.ceil(len(d["y_train"]) / recipe.batch_size)}


def stage_score(a: dict) -> dict:
    """Load the saved model and predict the padded test array."""
    import keras

    from ml.data import load_arrays
    from ml.train import predict

    work = Path(a["work"])
    x = load_arrays(work / "test_padded.npz")["x"]
    model, load = _timed(lambda: keras.models.load_model(work / "model.keras", compile=False))
    p, seconds = _timed(predict, model, x)
    return {"seconds": seconds, "records": len(p), "load_model_seconds": load}


def run_stage(a: dict) -> dict:
    """Child side: one stage (``a['stage']``) on the work folder ``a['work']``."""
    return {"validate": stage_validate, "pad": stage_pad, "train_epoch": stage_train_epoch, "score": stage_score}[a["stage"]](a)


def collect(cfg: dict) -> dict:
    """Every stage at every scale of ``cfg['scales']`` ((name, n_train, n_test)), each in a fresh process."""
    out = []
    for name, n_train, n_test in cfg["scales"]:
        data = ensure_demo(n_train, n_test)
        work = OUT / "scale" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        row = {"name": name, "n_train": n_train, "n_test": n_test, "stages": {}}
        for st in STAGES:
            kind, _, split = st.partition("_")
            args = {"stage": kind, "file": data[split], "split": split} if kind == "validate" else {"stage": st}
            x = row["stages"][st] = run_module("bench.scale", {"work": str(work), **args}, OUT / "scale" / f"{name}-{st}.log")
            log(f"scale {name} {st}: {x['seconds']:.2f}s, peak RSS {x['peak_rss_mib']:.0f} MiB")
        shutil.rmtree(work, ignore_errors=True)  # big, regenerated on every run
        out.append(row)
    return {"scales": out}


def _note(st: str, x: dict) -> str:
    if st.startswith("validate"):
        kids = f"; parse workers' largest peak {x['worker_peak_rss_mib']:,.0f} MiB" if x["worker_peak_rss_mib"] else ""
        return f"file {x['file_mib']:.0f} MiB; GX start-up {x['gx_startup_seconds']:.1f} s before it; npz save {x['save_seconds']:.2f} s{kids}"
    if st == "pad":
        return f"npz load {x['load_seconds']:.2f} s before, save {x['save_seconds']:.2f} s after"
    if st == "train_epoch":
        return f"batch {x['batch_size']}, {x['steps']:,} steps (incl. first-step tracing), validation over {x['n_val']:,} records"
    return f"TF import + model load {x['load_model_seconds']:.1f} s before"


def figures(r: dict) -> list[Figure]:
    """Section 2's headlines: cold parse+validate of the top scale's train file, the top scale's largest stage
    process, and the worst per-record growth between the two largest scales."""
    scales = r["scales"]
    top = scales[-1]
    v = top["stages"]["validate_train"]
    figs = [Figure(f"parse + validate of the {top['name']} train file, cold (GX start-up included)",
                   v["seconds"] + v["gx_startup_seconds"], "s", "<=", PARSE_TARGET_S, digits=1),
            Figure(f"peak RSS of the largest stage process at {top['name']}",
                   max(x["peak_rss_mib"] for x in top["stages"].values()), "MiB", "<=", RSS_TARGET_MIB, digits=0)]
    if len(scales) > 1:
        a = scales[-2]
        growth = max((top["stages"][st]["seconds"] / top["n_train"]) / (a["stages"][st]["seconds"] / a["n_train"])
                     for st in STAGES)
        figs.append(Figure(f"seconds per record, {a['name']} -> {top['name']}, the worst stage", growth, "x", "<=",
                           GROWTH_TARGET))
    return figs


def render(r: dict) -> str:
    """Section 2: one row per scale and stage; the per-record growth factors between scales."""
    scales = r["scales"]
    rows = [[s["name"], LABELS[st], f"{x['records']:,}", x["seconds"], f"{x['records'] / x['seconds']:,.0f}",
             x["peak_rss_mib"], f"{x['process_wall']:.1f} s; {_note(st, x)}"]
            for s in scales for st, x in s["stages"].items()]
    growth = [[LABELS[st]] + [f"x{(b['stages'][st]['seconds'] / b['n_train']) / (a['stages'][st]['seconds'] / a['n_train']):.2f}"
                              for a, b in zip(scales, scales[1:], strict=False)] for st in STAGES]
    out = ["Each stage ran in its own process; *seconds* = the operation only, *peak RSS* = that process's (`wait4`). "
           f"Train sizes are {scales[0]['n_train']:,} x scale, test {scales[0]['n_test']:,} x scale.", "",
           md_table(["scale", "stage", "records", "seconds", "records/s", "peak RSS (MiB)", "process wall; notes"], rows,
                    "llrrrrl")]
    if len(scales) > 1:
        out += ["", "Seconds per record, growth between scales (x1.00 = linear; fixed start-up costs make it smaller):", "",
                md_table(["stage"] + [f"{a['name']} -> {b['name']}" for a, b in zip(scales, scales[1:], strict=False)], growth)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(child_main(run_stage))
