"""Measured stages, one per process (``python -m bench.stages STAGE --args JSON``), so peak RSS is per stage.

Each prints one ``BENCH_RESULT {json}`` line: ``seconds`` (the measured operation only), ``records``,
``wall_in_process`` (everything after the interpreter started, imports included) and ``peak_rss_mib``.

Stages (section 2 of BENCHMARKS.md):

- ``validate``: :func:`ml.validation.validate_file` on one file (parse + GX rules + Data Docs, as the DAG
  runs it); then the compact arrays are saved (timed separately) for the next stage.
- ``pad``: load the arrays, stratified split + Keras-style padding of train, padding of test (as
  :func:`ml.pipeline.prepare_step`); saves ``split.npz`` and ``test_padded.npz``.
- ``train_epoch``: one epoch of the default recipe's model and batch size (validation pass included);
  or ``max_steps`` steps, extrapolated to the epoch and labelled so.
- ``score``: load the saved model and predict the padded test array (``ml.train.predict``, batch 1024).

``quality`` (section 3) trains the seed and default recipes and the logistic baseline over several seeds
on one demo family in one process and scores each on the validation split and on a held-out labelled
file (:mod:`bench.quality`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, peak_rss_mib  # noqa: E402


def _done(result: dict) -> None:
    result["wall_in_process"] = round(time.perf_counter() - T_START, 3)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    emit(result)


def stage_validate(a: dict) -> None:
    from ml.data import save_arrays
    from ml.data_fast import parse_workers
    from ml.task_marker import peak_rss_mib as task_peak_rss_mib
    from ml.validation import validate_file

    work = Path(a["work"])
    # GX import and context start-up, once per process, timed apart from the per-file work.
    t = time.perf_counter()
    try:
        from ml.validation import _engine

        _engine()
    except ImportError:  # the module no longer has a separate engine: validate_file pays it below
        pass
    gx_startup = time.perf_counter() - t
    t = time.perf_counter()
    out = validate_file(a["file"], a["split"], report_dir=work / f"validation-{a['split']}", min_records=1)
    seconds = time.perf_counter() - t
    if not out.ok:
        raise SystemExit(f"validation failed: {[f.message for f in out.failures][:3]}")
    r = out.records
    t = time.perf_counter()
    extra = {"labels": r.labels} if a["split"] == "train" else {}
    save_arrays(work / f"{a['split']}.npz", ids=r.ids, frames=r.frames, lengths=r.lengths, **extra)
    _done(
        {
            "seconds": seconds,
            "gx_startup_seconds": gx_startup,
            "records": len(r),
            "file_mib": Path(a["file"]).stat().st_size / 2**20,
            "save_npz_seconds": time.perf_counter() - t,
            "warnings": len(out.warnings),
            "parse_workers": parse_workers(len(r)),
            "worker_peak_rss_mib": round(task_peak_rss_mib(resource.RUSAGE_CHILDREN), 1),
        }
    )


def stage_pad(a: dict) -> None:
    import numpy as np

    from ml.data import load_arrays, pad_frames, save_arrays
    from ml.prepare import split_roles

    work = Path(a["work"])
    t = time.perf_counter()

    import_seconds = time.perf_counter() - t
    t = time.perf_counter()
    tr = load_arrays(work / "train.npz")
    te = load_arrays(work / "test.npz")
    load_seconds = time.perf_counter() - t

    t = time.perf_counter()
    x = pad_frames(tr["frames"], tr["lengths"])
    y = tr["labels"].astype(np.int8)
    itr, iva = split_roles(tr["ids"], y, 0.25)
    x_train, y_train, x_val, y_val = x[itr], y[itr], x[iva], y[iva]
    x_test = pad_frames(te["frames"], te["lengths"])
    seconds = time.perf_counter() - t

    t = time.perf_counter()
    save_arrays(work / "split.npz", x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
    save_arrays(work / "test_padded.npz", x=x_test)
    _done(
        {
            "seconds": seconds,
            "records": int(len(y) + len(x_test)),
            "load_seconds": load_seconds,
            "import_sklearn_seconds": import_seconds,
            "save_seconds": time.perf_counter() - t,
            "n_train": int(len(itr)),
            "n_val": int(len(iva)),
            "n_test": int(len(x_test)),
        }
    )


def stage_train_epoch(a: dict) -> None:
    import math

    from ml.data import load_arrays

    work = Path(a["work"])
    d = load_arrays(work / "split.npz")
    t = time.perf_counter()
    import keras

    from ml.train import fit, make_recipe, save_model

    import_seconds = time.perf_counter() - t
    rc = make_recipe("default", epochs=1)
    n = len(d["y_train"])
    steps_per_epoch = math.ceil(n / rc.batch_size)
    max_steps = a.get("max_steps")
    if max_steps and max_steps < steps_per_epoch:
        # A fixed number of steps: a prefix of the train split, validation pass included.
        k = max_steps * rc.batch_size
        model, _, seconds = fit(d["x_train"][:k], d["y_train"][:k], d["x_val"], d["y_val"], rc)
        measured_steps = max_steps
    else:
        model, _, seconds = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], rc)
        measured_steps = steps_per_epoch
    save_model(model, work / "model.keras")
    _done(
        {
            "seconds": seconds,
            "records": n if measured_steps == steps_per_epoch else measured_steps * rc.batch_size,
            "n_train": n,
            "n_val": int(len(d["y_val"])),
            "steps_per_epoch": steps_per_epoch,
            "measured_steps": measured_steps,
            "extrapolated": measured_steps != steps_per_epoch,
            "epoch_seconds": seconds * steps_per_epoch / measured_steps,
            "import_tf_seconds": import_seconds,
            "keras": keras.__version__,
        }
    )


def stage_score(a: dict) -> None:
    from ml.data import load_arrays

    work = Path(a["work"])
    x = load_arrays(work / "test_padded.npz")["x"]
    t = time.perf_counter()
    import keras

    from ml.train import predict

    model = keras.models.load_model(work / "model.keras", compile=False)
    load_seconds = time.perf_counter() - t
    t = time.perf_counter()
    p = predict(model, x)
    seconds = time.perf_counter() - t
    _done({"seconds": seconds, "records": int(len(p)), "import_and_load_model_seconds": load_seconds})


def stage_quality(a: dict) -> None:
    """One demo family: logistic baseline, seed recipe and default recipe over seeds (:mod:`bench.quality`).

    Also the default recipe averaged over 3 seeds when the default trains one model: for seed s its
    members are the default recipe's single models of seeds s, s+1, s+2 (what ``ensemble_seeds=3`` trains
    on the same split), so only the two seeds after the last one are extra fits.
    """
    import numpy as np

    from bench.quality import Case, score
    from ml.train import PRESETS, make_recipe

    case = Case(a["family"], a["n_train"], a["n_holdout"])
    d = case.split()
    seeds = list(a["seeds"])
    default_k = PRESETS["default"].ensemble_seeds
    runs, singles = [], {}

    def train(preset: str, seed: int) -> dict:
        r = case.train_recipe(make_recipe(preset, seed=seed, epochs=a.get("epochs")))
        print(f"{a['family']} seed {seed} {preset}: {r['holdout']}", file=sys.stderr, flush=True)
        return r

    def row(model: str, seed: int, r: dict) -> dict:
        return {"model": model, "seed": seed, **{k: v for k, v in r.items() if not k.startswith("p_")}}

    for seed in seeds:
        runs.append(row("logistic baseline", seed, {**case.baseline(seed), "epochs": None}))
        for preset in ("seed", "default"):
            r = train(preset, seed)
            if preset == "default":
                singles[seed] = r
            runs.append(row(f"{preset} recipe", seed, r))
    if default_k == 1 and a.get("average_of", 3) > 1:
        k = a.get("average_of", 3)
        for seed in seeds:
            for member_seed in range(seed, seed + k):
                if member_seed not in singles:
                    singles[member_seed] = train("default", member_seed)
            members = [singles[member_seed] for member_seed in range(seed, seed + k)]
            p_val = np.mean([m["p_val"] for m in members], axis=0)
            p_hold = np.mean([m["p_hold"] for m in members], axis=0)
            runs.append(
                row(
                    f"default recipe, average of {k} seeds",
                    seed,
                    {
                        **score(d["y_val"], p_val, case.y_hold, p_hold),
                        "epochs": sum(m["epochs"] for m in members),
                        "train_seconds": sum(m["train_seconds"] for m in members),
                    },
                )
            )
    _done(
        {
            "family": a["family"],
            "runs": runs,
            "n_train_file": len(case.train),
            "n_train": int(len(d["y_train"])),
            "n_val": int(len(d["y_val"])),
            "n_holdout": int(len(case.y_hold)),
            "holdout_seed": case.hold_meta["seed"],
            "default_ensemble_seeds": default_k,
        }
    )


STAGES = {
    "validate": stage_validate,
    "pad": stage_pad,
    "train_epoch": stage_train_epoch,
    "score": stage_score,
    "quality": stage_quality,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="one measured bench stage")
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--args", default="{}", help="JSON object of stage arguments")
    a = p.parse_args(argv)
    STAGES[a.stage](json.loads(a.args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
