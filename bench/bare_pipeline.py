"""The pipeline without orchestration: read, split and pad, train, score, write a submission (no Airflow, no GX).

The reference of BENCHMARKS.md sections 1 and 1b, run as a fresh process (it pays its own imports) with the
recipe, data, split and seed of a ``turkey_training`` run with default params::

    python -m bench.bare_pipeline --train train.json --test test.json --out DIR [--epochs N]

Prints one ``BENCH_RESULT {json}`` line with its own timers (the caller sees the interpreter start-up too).
"""

from __future__ import annotations

import argparse
import time

T_START = time.perf_counter()


def main(argv=None) -> int:
    """Run the pipeline once and print its result line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=None, help="cap the default recipe's epochs")
    a = p.parse_args(argv)
    times = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        times[name] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()

    from bench.common import emit
    from ml.config import RunConfig
    from ml.data import pad_frames, read_records
    from ml.pipeline import write_submission
    from ml.prepare import split_and_pad

    config = RunConfig(epochs=a.epochs)  # the DAG's defaults, as a run with conf {} (or {"epochs": N}) gets them
    lap("import_ml")
    train, test = read_records(a.train), read_records(a.test)
    lap("read_json")
    d = split_and_pad(train, config.val_fraction)
    x_test = pad_frames(test.frames, test.lengths)
    lap("split_pad")
    import keras  # noqa: F401  (the TensorFlow backend)

    from ml.evaluate import binary_metrics
    from ml.train import fit, predict

    lap("import_tf")
    model, history, times["fit"] = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], config.training_recipe())
    lap("build_and_fit")
    val_pred = predict(model, d["x_val"])
    write_submission(test.ids, predict(model, x_test), f"{a.out}/submission.csv")
    lap("score_and_write")
    m = binary_metrics(d["y_val"], val_pred)
    emit({"times": times, "in_process_seconds": round(time.perf_counter() - T_START, 3),
          "epochs_run": len(history.get("loss", [])), "val_accuracy": m["accuracy"], "val_auc": m["roc_auc"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
