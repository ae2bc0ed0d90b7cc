"""The GPU check: one command for a session lent a GPU, under 8 minutes, evidence for BENCHMARKS §4.

::

    source scripts/env.sh && python -m bench.gpu_check [--wheelhouse DIR]     # on the GPU machine
    python -m bench.gpu_check --cpu-only                                       # smoke mode, any machine

Steps (each bounded by ``--budget-s``, default 420 s, so the whole call stays under 8 minutes):

1. install the ``[gpu]`` extra (``tensorflow[and-cuda]``) with pip: from ``--wheelhouse`` /
   ``$TURKEY_WHEELHOUSE`` (``--no-index --find-links``) when given, else from the index; the lent machines
   have no internet, so without a wheelhouse this fails with one line saying so (exit 1);
2. TensorFlow sees a GPU (``tf.config.list_physical_devices('GPU')``), else one line, exit 1;
3. cuDNN evidence: the seed model's GRU rebuilt with ``use_cudnn=True`` (Keras raises when it cannot use
   the cuDNN kernel) runs a training step, and the traced train step of the unchanged model (``use_cudnn=
   "auto"``) contains ``CudnnRNN*`` ops (op types of the concrete function's graph, not an assumption);
4. the grid: one epoch's time and samples/s at batch 32 and 512, mixed precision off and on, at 1x and 100x
   Kaggle size (100x = the 1x demo arrays tiled 100 times: throughput only), each a fresh model, timing the
   second epoch (the first includes tracing, reported too); cells that would pass the budget are skipped
   and say so;
5. CPU vs GPU agreement: the default recipe (epochs capped at :data:`AUC_EPOCHS`) on the 1x demo data,
   same seed, once with the GPU hidden (a separate process, ``CUDA_VISIBLE_DEVICES=""``) and once on the
   GPU; target ``|Δ validation AUC| <= 0.005``.

Writes ``<out>/gpu_check.json`` and ``<out>/gpu_check.md`` (``--out``, default ``bench/results/``, which
``bench/run_bench.py``'s section 4 renders when the JSON is there; ``$OUT`` too when set, for the device
runner). ``--cpu-only`` runs every step on the CPU with tiny sizes and no install (a smoke test of the
script; its result is marked as such and never written to ``bench/results/``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KAGGLE_TRAIN, REPO, child_env, emit, md_table, parse_result, run_proc  # noqa: E402

log = logging.getLogger(__name__)

RESULTS_DIR = REPO / "bench" / "results"
BUDGET_S = 420
AUC_EPOCHS = 8
AUC_TOLERANCE = 0.005
BATCHES = (32, 512)
SCALES = (1, 100)
SMOKE_RECORDS = 120


class CheckFailed(RuntimeError):
    """A step of the check could not be done; its message is the one line the command prints."""


# ------------------------------------------------------------------------------------------------ install
def install_gpu_extra(wheelhouse: str | None, timeout: float) -> str:
    """``pip install -e .[gpu]``, offline from ``wheelhouse`` when given; the pip command on success."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[gpu]"]
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
def _demo_arrays(n_train: int, seed: int = 0):
    """Padded frames and labels of ``n_train`` presence-family demo records (the demo generator, in memory)."""
    import numpy as np

    from ml.data import pad_frames
    from ml.demo import make_records

    recs = make_records(n_train, np.random.default_rng(seed), with_labels=True, taken=set())
    lengths = np.array([len(r["audio_embedding"]) for r in recs], np.int32)
    frames = np.concatenate([np.asarray(r["audio_embedding"], np.uint8) for r in recs])
    return pad_frames(frames, lengths), np.array([r["is_turkey"] for r in recs], np.float32)


def _op_types(model, x, y) -> set:
    """Op types in the traced graph of one training step of ``model`` (gradient included)."""
    import keras
    import tensorflow as tf

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.binary_crossentropy(yb[:, None], model(xb, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(tf.constant(x[:8], tf.float32), tf.constant(y[:8])).graph
    types = {op.type for op in graph.get_operations()}
    for fn in graph._functions.values():  # noqa: SLF001 - nested bodies (while/cond, gradients) hold the RNN ops
        types.update(n.op for n in fn.definition.node_def)
    return types


def cudnn_evidence(x, y, cpu_only: bool) -> dict:
    """Whether the seed model's GRU runs on the cuDNN kernel: a forced ``use_cudnn=True`` step and the op types."""
    import keras

    from ml.model import build_model

    model = build_model()
    ops = sorted(t for t in _op_types(model, x, y) if "Cudnn" in t)
    forced = keras.Sequential(
        [
            keras.Input(shape=x.shape[1:]),
            keras.layers.Bidirectional(keras.layers.GRU(128, return_sequences=True, use_cudnn=True)),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    forced.compile(optimizer="adam", loss="binary_crossentropy")
    try:
        forced.train_on_batch(x[:32].astype("float32"), y[:32])
        forced_ok, forced_error = True, None
    except Exception as e:  # noqa: BLE001 - Keras raises ValueError (or a TF error) when cuDNN is not usable
        forced_ok, forced_error = False, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return {
        "cudnn_ops_in_train_step": ops,
        "forced_use_cudnn_ran": forced_ok,
        "forced_error": forced_error,
        "on_cudnn": bool(ops) and forced_ok,
        "expected": not cpu_only,
    }


def _epoch_times(x, y, batch: int, mixed: bool, epochs: int = 2) -> list[float]:
    """Seconds of each of ``epochs`` epochs of a fresh seed model (first includes tracing)."""
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
    """TensorFlow's devices, the cuDNN evidence and the throughput grid (in this process)."""
    import numpy as np
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    if not gpus and not cpu_only:
        raise CheckFailed("TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)")
    for d in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(d, True)
    n1 = SMOKE_RECORDS if cpu_only else KAGGLE_TRAIN
    x1, y1 = _demo_arrays(n1)
    out = {
        "tf_version": tf.__version__,
        "gpus": gpus,
        "built_with_cuda": tf.test.is_built_with_cuda(),
        "cudnn": cudnn_evidence(x1, y1, cpu_only),
        "grid": [],
    }
    scales = (1,) if cpu_only else SCALES
    for scale in scales:
        x, y = (x1, y1) if scale == 1 else (np.tile(x1, (scale, 1, 1)), np.tile(y1, scale))
        for batch in BATCHES:
            for mixed in (False, True):
                cell = {"scale": scale, "records": len(x), "batch": batch, "mixed_precision": mixed}
                if time.monotonic() > deadline:
                    out["grid"].append({**cell, "skipped": "time budget spent"})
                    continue
                t = _epoch_times(x, y, batch, mixed)
                cell.update(first_epoch_s=t[0], epoch_s=t[-1], samples_per_s=len(x) / t[-1])
                log.info("grid %s", cell)
                out["grid"].append(cell)
    return out


def worker_auc(cpu_only: bool) -> dict:
    """Validation AUC of the default recipe (epochs capped) on 1x demo data, seed 42, on this process's device."""
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from ml.train import fit, make_recipe, predict

    x, y = _demo_arrays(SMOKE_RECORDS if cpu_only else KAGGLE_TRAIN)
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)
    recipe = make_recipe("default", epochs=1 if cpu_only else AUC_EPOCHS, seed=42)
    model, history, seconds = fit(xt, yt, xv, yv, recipe)
    return {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "epochs": recipe.epochs,
        "val_auc": float(roc_auc_score(yv, predict(model, xv))),
        "seconds": seconds,
    }


# ------------------------------------------------------------------------------------------------ driver
def _worker(kind: str, cpu_only: bool, deadline: float, hide_gpu: bool, log_dir: Path) -> dict:
    """Run one worker step in a fresh process (a freshly installed TensorFlow; the GPU hidden or not)."""
    env = child_env(**({"CUDA_VISIBLE_DEVICES": ""} if hide_gpu else {}))
    cmd = [sys.executable, "-m", "bench.gpu_check", "--worker", kind, "--deadline", str(deadline - time.monotonic())]
    p = run_proc(
        cmd + (["--cpu-only"] if cpu_only else []),
        env=env,
        timeout=max(deadline - time.monotonic(), 30) + 60,
        log_path=log_dir / f"gpu_check-{kind}{'-cpu' if hide_gpu else ''}.log",
    )
    if p.rc != 0:
        lines = [
            ln for ln in p.output.strip().splitlines() if ln.startswith("gpu_check: ")
        ] or p.output.strip().splitlines()
        raise CheckFailed(f"{kind} step failed (exit {p.rc}): {(lines or ['no output'])[-1]}")
    return parse_result(p.output)


def run_check(cpu_only: bool, wheelhouse: str | None, skip_install: bool, budget_s: float, log_dir: Path) -> dict:
    """Every step of the check; the result dict written as JSON (raises :class:`CheckFailed`)."""
    t0 = time.monotonic()
    deadline = t0 + budget_s
    result = {
        "mode": "cpu-only smoke (tiny sizes, NOT a GPU measurement)" if cpu_only else "gpu",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "budget_s": budget_s,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    if cpu_only or skip_install:
        result["install"] = "skipped"
    else:
        result["install"] = install_gpu_extra(wheelhouse, timeout=min(180, budget_s / 3))
    auc_reserve = 30 if cpu_only else 150  # the two AUC runs after the grid
    result.update(_worker("grid", cpu_only, deadline - auc_reserve, hide_gpu=False, log_dir=log_dir))
    cpu = _worker("auc", cpu_only, deadline, hide_gpu=True, log_dir=log_dir)
    gpu = cpu if cpu_only else _worker("auc", cpu_only, deadline, hide_gpu=False, log_dir=log_dir)
    delta = abs(cpu["val_auc"] - gpu["val_auc"])
    result["auc"] = {
        "cpu": cpu,
        "gpu": gpu,
        "abs_delta": delta,
        "tolerance": AUC_TOLERANCE,
        "met": delta <= AUC_TOLERANCE,
    }
    result["seconds"] = time.monotonic() - t0
    return result


def render(r: dict) -> str:
    """Markdown for BENCHMARKS §4 from a :func:`run_check` result."""
    c = r["cudnn"]
    out = [
        f"Measured by `python -m bench.gpu_check` on {r['date']} ({r['mode']}; {r['seconds']:.0f} s, budget "
        f"{r['budget_s']:.0f} s). TensorFlow {r['tf_version']}, GPUs seen: {', '.join(r['gpus']) or 'none'}.",
        "",
        f"- cuDNN GRU: **{'yes' if c['on_cudnn'] else 'no'}** — CuDNN ops in the seed model's traced train step: "
        f"{', '.join(f'`{o}`' for o in c['cudnn_ops_in_train_step']) or 'none'}; a GRU with `use_cudnn=True` "
        f"{'ran' if c['forced_use_cudnn_ran'] else 'was refused: ' + str(c['forced_error'])}.",
        "",
    ]
    rows = [
        [
            f"{g['scale']}x",
            g["records"],
            g["batch"],
            "on" if g["mixed_precision"] else "off",
            g.get("first_epoch_s"),
            g.get("epoch_s"),
            g.get("samples_per_s"),
            g.get("skipped", ""),
        ]
        for g in r["grid"]
    ]
    out += [
        md_table(
            [
                "scale",
                "records",
                "batch",
                "mixed precision",
                "first epoch (s, incl. tracing)",
                "epoch (s)",
                "samples/s",
                "note",
            ],
            rows,
        ),
        "",
    ]
    a = r["auc"]
    out += [
        f"- CPU vs GPU validation AUC (default recipe, {a['gpu']['epochs']} epochs, seed 42, 1x demo data): "
        f"CPU {a['cpu']['val_auc']:.4f}, GPU {a['gpu']['val_auc']:.4f}, |Δ| {a['abs_delta']:.4f} <= "
        f"{a['tolerance']}: **{'met' if a['met'] else 'not met'}**."
    ]
    return "\n".join(out)


def main(argv=None) -> int:
    """CLI: the check (driver) or one worker step; a failure is one ``gpu_check: …`` line and exit 1."""
    p = argparse.ArgumentParser(description="GPU check for BENCHMARKS §4 (under 8 minutes)")
    p.add_argument("--cpu-only", action="store_true", help="smoke mode: CPU, tiny sizes, no install")
    p.add_argument("--wheelhouse", default=os.environ.get("TURKEY_WHEELHOUSE"), help="offline wheels for .[gpu]")
    p.add_argument("--skip-install", action="store_true", help="use the TensorFlow already installed")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="time budget of the whole check")
    p.add_argument("--out", default=None, help="folder for gpu_check.json/.md (default bench/results/)")
    p.add_argument("--worker", choices=("grid", "auc"), help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=BUDGET_S, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if a.worker:
            deadline = time.monotonic() + a.deadline
            emit(worker_grid(a.cpu_only, deadline) if a.worker == "grid" else worker_auc(a.cpu_only))
            return 0
        out = Path(a.out) if a.out else (REPO / "bench" / "out" / "gpu" if a.cpu_only else RESULTS_DIR)
        result = run_check(a.cpu_only, a.wheelhouse, a.skip_install, a.budget_s, REPO / "bench" / "out" / "gpu")
    except CheckFailed as e:
        print(f"gpu_check: {e}", flush=True)
        return 1
    md = render(result)
    for folder in [out] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
        (folder / "gpu_check.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
