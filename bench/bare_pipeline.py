"""The pipeline without orchestration: load, pad, train, score, write a submission. No Airflow, no GX.

Run as a fresh process (it pays its own TensorFlow import), same recipe, data, split and seed as a
``turkey_training`` run with default params:

    python bench/bare_pipeline.py --train train.json --test test.json --out DIR [--epochs N]

Prints one ``BENCH_RESULT {json}`` line with its own breakdown (seconds since the interpreter started
running this file are measured by the caller, which also sees interpreter start-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--recipe", default="default")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--val-fraction", type=float, default=0.25)
    a = p.parse_args(argv)

    times = {}

    def lap(name, t0):
        times[name] = round(time.perf_counter() - t0, 3)

    t = time.perf_counter()
    from bench.common import emit, peak_rss_mib
    from ml.data import pad_frames, read_records
    from ml.pipeline import write_submission
    from ml.prepare import split_and_pad

    lap("import_ml", t)

    t = time.perf_counter()
    train = read_records(a.train)
    test = read_records(a.test)
    lap("read_json", t)

    t = time.perf_counter()
    d = split_and_pad(train, a.val_fraction)
    x_test = pad_frames(test.frames, test.lengths)
    lap("split_pad", t)

    t = time.perf_counter()
    import keras  # noqa: F401  (TensorFlow backend)

    from ml.train import fit, make_recipe, predict

    lap("import_tf", t)

    t = time.perf_counter()
    model, history, fit_seconds = fit(
        d["x_train"], d["y_train"], d["x_val"], d["y_val"], make_recipe(a.recipe, epochs=a.epochs, seed=a.seed)
    )
    lap("build_and_fit", t)
    times["fit"] = round(fit_seconds, 3)

    t = time.perf_counter()
    val_pred = predict(model, d["x_val"])
    test_pred = predict(model, x_test)
    sub = write_submission(test.ids, test_pred, Path(a.out) / "submission.csv")
    lap("score_and_write", t)

    from ml.evaluate import binary_metrics

    m = binary_metrics(d["y_val"], val_pred)
    emit(
        {
            "times": times,
            "in_process_seconds": round(time.perf_counter() - T_START, 3),
            "epochs_run": len(history.get("loss", [])),
            "val_accuracy": m["accuracy"],
            "val_auc": m["roc_auc"],
            "n_train": int(len(d["y_train"])),
            "n_val": int(len(d["y_val"])),
            "n_test": len(test),
            "submission": sub,
            "peak_rss_mib": peak_rss_mib(),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
