"""The GPU check for a session lent a GPU (one call, under 8 minutes): the evidence for BENCHMARKS.md section 4.

    source scripts/env.sh && python -m bench.gpu_check [--wheelhouse DIR]     # on the GPU machine
    python -m bench.gpu_check --cpu-only                                       # smoke mode: CPU, tiny data, no install

Within ``--budget-s``: install the ``[gpu]`` extra (offline from ``--wheelhouse`` / ``$TURKEY_WHEELHOUSE``: the
lent machines have no internet); check that TensorFlow sees the GPU; prove the GRU runs on cuDNN (a
``use_cudnn=True`` GRU trains a step, and the seed model's traced train step holds ``CudnnRNN*`` ops);
time the second epoch of fresh models at batch 32 and 512, mixed precision off and on, at 1x and 100x (the
1x arrays tiled: throughput only); compare the default recipe's validation AUC with the GPU hidden and
on it (target ``|Δ| <= 0.005``). The TensorFlow steps run in fresh processes. A failed step is one
``gpu_check: …`` line, exit 1. Writes gpu_check.json/.md to ``--out`` (default bench/results/, which
section 4 renders; ``$OUT`` too when set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import KAGGLE_TRAIN, OUT, PY, REPO, RESULTS, Figure, child_env, emit, md_table, parse_result, run_proc

BUDGET_S = 420
AUC_EPOCHS = 8
AUC_TOLERANCE = 0.005
BATCHES = (32, 512)
SCALES = (1, 100)
SMOKE_RECORDS = 64


class CheckFailed(RuntimeError):
    """A step of the check could not be done; its message is the one line the command prints."""


def install_gpu_extra(wheelhouse: str | None, timeout: float) -> str:
    """``pip install -e .[gpu]``, offline from ``wheelhouse`` when given; the pip command on success."""
    cmd = [PY, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[gpu]"]
    if wheelhouse:
        if not Path(wheelhouse).is_dir():
            raise CheckFailed(f"wheelhouse {wheelhouse} is not a directory")
        cmd[4:4] = ["--no-index", "--find-links", wheelhouse]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise CheckFailed(f"pip install .[gpu] timed out after {timeout:.0f}s") from e
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        hint = "" if wheelhouse else "; no network here? pass --wheelhouse DIR or set TURKEY_WHEELHOUSE"
        raise CheckFailed(f"cannot install .[gpu]: {last}{hint}")
    return " ".join(cmd)


# ------------------------------------------------------------------------------------------------ worker side
def demo_arrays(n: int, seed: int = 0):
    """Padded frames and labels of ``n`` presence-family demo records, in memory."""
    import numpy as np

    from ml.data import pad_frames
    from ml.demo import make_records

    recs = make_records(n, np.random.default_rng(seed), with_labels=True, taken=set())
    lengths = np.array([len(r["audio_embedding"]) for r in recs], np.int32)
    frames = np.concatenate([np.asarray(r["audio_embedding"], np.uint8) for r in recs])
    return pad_frames(frames, lengths), np.array([r["is_turkey"] for r in recs], np.float32)


def op_types(model, x, y) -> set:
    """Op types in the traced graph of one training step of ``model``, gradient and nested bodies included."""
    import keras
    import tensorflow as tf

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.binary_crossentropy(yb[:, None], model(xb, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(tf.constant(x[:8], tf.float32), tf.constant(y[:8])).graph
    types = {op.type for op in graph.get_operations()}
    for fn in graph._functions.values():  # noqa: SLF001 - while/cond bodies and gradients hold the RNN ops
        types.update(n.op for n in fn.definition.node_def)
    return types


def cudnn_evidence(x, y) -> dict:
    """Whether the GRU runs on the cuDNN kernel: the seed model's traced ops and a forced ``use_cudnn=True`` step."""
    import keras

    from ml.model import build_model

    ops = sorted(t for t in op_types(build_model(), x, y) if "Cudnn" in t)
    forced = keras.Sequential([keras.Input(shape=x.shape[1:]),
                               keras.layers.Bidirectional(keras.layers.GRU(128, return_sequences=True, use_cudnn=True)),
                               keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1, activation="sigmoid")])
    forced.compile(optimizer="adam", loss="binary_crossentropy")
    try:
        forced.train_on_batch(x[:32].astype("float32"), y[:32])
        error = None
    except Exception as e:  # noqa: BLE001 - Keras raises ValueError (or a TF error) when cuDNN is not usable
        error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return {"cudnn_ops_in_train_step": ops, "forced_use_cudnn_ran": error is None, "forced_error": error,
            "on_cudnn": bool(ops) and error is None}


def epoch_times(x, y, batch: int, mixed: bool, epochs: int = 2) -> list[float]:
    """Seconds of each epoch of a fresh seed model (the first includes tracing)."""
    import keras

    from ml.model import build_model
    from ml.train import seed_everything

    seed_everything(42)
    model = build_model(1 / 255, mixed_precision=mixed)
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True, callbacks=[Clock()])
    keras.mixed_precision.set_dtype_policy("float32")
    return times


def worker_grid(cpu_only: bool, deadline: float) -> dict:
    """TensorFlow's devices, the cuDNN evidence and the throughput grid, in this process."""
    import numpy as np
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not cpu_only:
        raise CheckFailed("TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)")
    for d in gpus:
        tf.config.experimental.set_memory_growth(d, True)
    x1, y1 = demo_arrays(SMOKE_RECORDS if cpu_only else KAGGLE_TRAIN)
    out = {"tf_version": tf.__version__, "gpus": [d.name for d in gpus], "cudnn": cudnn_evidence(x1, y1), "grid": []}
    for scale in (1,) if cpu_only else SCALES:
        x, y = (x1, y1) if scale == 1 else (np.tile(x1, (scale, 1, 1)), np.tile(y1, scale))
        for batch in BATCHES:
            for mixed in (False, True):
                cell = {"scale": scale, "records": len(x), "batch": batch, "mixed_precision": mixed}
                if time.monotonic() > deadline:
                    out["grid"].append({**cell, "skipped": "time budget spent"})
                    continue
                t = epoch_times(x, y, batch, mixed)
                out["grid"].append({**cell, "first_epoch_s": t[0], "epoch_s": t[-1], "samples_per_s": len(x) / t[-1]})
    return out


def worker_auc(cpu_only: bool) -> dict:
    """Validation AUC of the default recipe (epochs capped), seed 42, on this process's device."""
    import tensorflow as tf

    from ml.config import make_recipe
    from ml.evaluate import binary_metrics
    from ml.train import fit, predict

    x, y = demo_arrays(SMOKE_RECORDS if cpu_only else KAGGLE_TRAIN)
    k = int(len(x) * 0.75)  # the generator's order is random: a fixed cut is a fair split
    recipe = make_recipe("default", epochs=1 if cpu_only else AUC_EPOCHS, seed=42)
    model, _, seconds = fit(x[:k], y[:k], x[k:], y[k:], recipe)
    return {"device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU", "epochs": recipe.epochs,
            "val_auc": binary_metrics(y[k:], predict(model, x[k:]))["roc_auc"], "seconds": seconds}


# ------------------------------------------------------------------------------------------------ driver
def worker(kind: str, cpu_only: bool, deadline: float, hide_gpu: bool) -> dict:
    """One worker step in a fresh process (the GPU hidden or not); :class:`CheckFailed` with its last line."""
    cmd = [PY, "-m", "bench.gpu_check", "--worker", kind, "--deadline", str(deadline - time.monotonic())]
    p = run_proc(cmd + (["--cpu-only"] if cpu_only else []), env=child_env(**({"CUDA_VISIBLE_DEVICES": ""} if hide_gpu else {})),
                 timeout=max(deadline - time.monotonic(), 30) + 60,
                 log_path=OUT / "gpu" / f"gpu_check-{kind}{'-cpu' if hide_gpu else ''}.log")
    if p.rc != 0:
        lines = [ln for ln in p.output.splitlines() if ln.startswith("gpu_check: ")] or p.output.splitlines() or ["no output"]
        raise CheckFailed(f"{kind} step failed (exit {p.rc}): {lines[-1]}")
    return parse_result(p.output)


def run_check(cpu_only: bool, wheelhouse: str | None, skip_install: bool, budget_s: float, run=worker) -> dict:
    """Every step of the check (``run`` does one worker step); the result written as JSON."""
    t0 = time.monotonic()
    deadline = t0 + budget_s
    result = {"mode": "cpu-only smoke (tiny sizes, NOT a GPU measurement)" if cpu_only else "gpu",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "budget_s": budget_s,
              "install": "skipped" if cpu_only or skip_install else install_gpu_extra(wheelhouse, min(180, budget_s / 3))}
    result.update(run("grid", cpu_only, deadline - (30 if cpu_only else 150), False))  # leave time for the AUC runs
    cpu = run("auc", cpu_only, deadline, True)
    gpu = cpu if cpu_only else run("auc", cpu_only, deadline, False)
    delta = abs(cpu["val_auc"] - gpu["val_auc"])
    result["auc"] = {"cpu": cpu, "gpu": gpu, "abs_delta": delta, "tolerance": AUC_TOLERANCE, "met": delta <= AUC_TOLERANCE}
    result["seconds"] = time.monotonic() - t0
    return result


def render(r: dict) -> str:
    """Markdown for section 4 from a :func:`run_check` result."""
    c, a = r["cudnn"], r["auc"]
    rows = [[f"{g['scale']}x", g["records"], g["batch"], "on" if g["mixed_precision"] else "off", g.get("first_epoch_s"),
             g.get("epoch_s"), g.get("samples_per_s"), g.get("skipped", "")] for g in r["grid"]]
    return "\n".join([
        f"Measured by `python -m bench.gpu_check` on {r['date']} ({r['mode']}; {r['seconds']:.0f} s, budget "
        f"{r['budget_s']:.0f} s). TensorFlow {r['tf_version']}, GPUs seen: {', '.join(r['gpus']) or 'none'}.",
        "",
        f"- cuDNN GRU: **{'yes' if c['on_cudnn'] else 'no'}** — CuDNN ops in the seed model's traced train step: "
        f"{', '.join(f'`{o}`' for o in c['cudnn_ops_in_train_step']) or 'none'}; a GRU with `use_cudnn=True` "
        f"{'ran' if c['forced_use_cudnn_ran'] else 'was refused: ' + str(c['forced_error'])}.",
        "",
        md_table(["scale", "records", "batch", "mixed precision", "first epoch (s, incl. tracing)", "epoch (s)",
                  "samples/s", "note"], rows),
        "",
        f"- CPU vs GPU validation AUC (default recipe, {a['gpu']['epochs']} epochs, seed 42, 1x demo data): CPU "
        f"{a['cpu']['val_auc']:.4f}, GPU {a['gpu']['val_auc']:.4f}, |Δ| {a['abs_delta']:.4f}.",
    ])


# ------------------------------------------------------------------------------------------------ section 4
def collect(cfg: dict) -> dict:
    """Section 4's data: the saved check (bench/results/gpu_check.json), if any."""
    saved = RESULTS / "gpu_check.json"
    return {"check": json.loads(saved.read_text()) if saved.is_file() else None}


def figures(r: dict) -> list[Figure]:
    """The CPU/GPU AUC agreement, when a check was saved."""
    if not (c := r["check"]):
        return [Figure("CPU vs GPU validation AUC, absolute difference (`python -m bench.gpu_check` on a lent GPU)", None, "", "<=",
                       AUC_TOLERANCE, digits=4)]
    return [Figure("CPU vs GPU validation AUC, absolute difference (same recipe and seed)", c["auc"]["abs_delta"], "", "<=", AUC_TOLERANCE,
                   digits=4, command="python -m bench.gpu_check", when=c["date"])]


def render_section(r: dict) -> str:
    """The saved check's tables, or why there is none and how to get one."""
    if r["check"]:
        return render(r["check"])
    return ("**None measured**: no GPU check result is saved (`bench/results/gpu_check.json`). On a machine lent a GPU, "
            "from the repository root: `source scripts/env.sh && python -m bench.gpu_check [--wheelhouse DIR]` (see "
            "its docstring: one call of under 8 minutes); commit the JSON it writes, then `python -m bench.run_bench "
            "--sections gpu --splice` puts its tables here. `python -m bench.gpu_check --cpu-only` is its smoke mode.")


def main(argv=None) -> int:
    """CLI: the check (driver) or one worker step; a failure is one ``gpu_check: …`` line and exit 1."""
    p = argparse.ArgumentParser(description="GPU check for BENCHMARKS.md section 4 (under 8 minutes)")
    p.add_argument("--cpu-only", action="store_true", help="smoke mode: CPU, tiny sizes, no install")
    p.add_argument("--wheelhouse", default=os.environ.get("TURKEY_WHEELHOUSE"), help="offline wheels for .[gpu]")
    p.add_argument("--skip-install", action="store_true", help="use the TensorFlow already installed")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="time budget of the whole check")
    p.add_argument("--out", default=None, help="folder for gpu_check.json/.md (default bench/results/)")
    p.add_argument("--worker", choices=("grid", "auc"), help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=BUDGET_S, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    try:
        if a.worker:
            deadline = time.monotonic() + a.deadline
            emit(worker_grid(a.cpu_only, deadline) if a.worker == "grid" else worker_auc(a.cpu_only))
            return 0
        result = run_check(a.cpu_only, a.wheelhouse, a.skip_install, a.budget_s)
    except CheckFailed as e:
        print(f"gpu_check: {e}", flush=True)
        return 1
    md = render(result)
    out = Path(a.out) if a.out else (OUT / "gpu" if a.cpu_only else RESULTS)
    for folder in [out] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
        (folder / "gpu_check.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
