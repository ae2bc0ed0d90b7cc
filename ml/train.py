"""Training recipes and the training loop (Keras 3).

Two named presets:

- ``seed``: the reference tutorial's recipe, kept for comparison: raw 0-255 input, batch 512, 16 epochs,
  Nadam(1e-3), ReduceLROnPlateau(val_accuracy, factor 0.1, patience 2), EarlyStopping(val_loss,
  patience 20, restore best). On ~900 training records that is only 32 gradient steps: the model ends far
  from convergence, and its quality depends strongly on the seed.
- ``default``: same architecture and optimiser, chosen by measurement (``python -m bench.recipe_sweep``:
  held-out AUC on demo data over 3 seeds; results in the README): batch 32 (~28 steps per epoch on
  Kaggle-size data), up to 60 epochs, ReduceLROnPlateau(val_loss, factor 0.1, patience 3), EarlyStopping
  on validation AUC (patience 10) with the best weights restored. Input scaling to [0, 1]
  (``input_scale``, a parameter-free Rescaling layer inside the model) measured no better, so it is off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from ml.fsutil import atomic_output

log = logging.getLogger("ml.train")


@dataclass(frozen=True)
class Recipe:
    name: str = "default"
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    input_scale: float = 1.0
    reduce_lr_monitor: str = "val_loss"
    reduce_lr_factor: float = 0.1
    reduce_lr_patience: int = 3
    min_lr: float = 1e-6
    early_stop_monitor: str = "val_auc"
    early_stop_patience: int = 10
    seed: int = 42
    mixed_precision: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS = {
    "default": Recipe(),
    "seed": Recipe(
        name="seed",
        epochs=16,
        batch_size=512,
        learning_rate=1e-3,
        input_scale=1.0,
        reduce_lr_monitor="val_accuracy",
        reduce_lr_factor=0.1,
        reduce_lr_patience=2,
        min_lr=1e-8,
        early_stop_monitor="val_loss",
        early_stop_patience=20,
    ),
}


def make_recipe(preset: str = "default", **overrides) -> Recipe:
    """A preset with some fields overridden (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown recipe preset {preset!r}; choose from {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown recipe option(s): {sorted(unknown)}")
    return dataclasses.replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


def seed_everything(seed: int) -> None:
    import keras
    import tensorflow as tf

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def describe_device() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    names = []
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except RuntimeError:
            pass  # already initialised
        details = tf.config.experimental.get_device_details(g)
        names.append(details.get("device_name", g.name))
    return "GPU: " + ", ".join(names) + " (cuDNN GRU)"


def _epoch_logger(epochs: int):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = " ".join(f"{k}={float(v):.4f}" for k, v in sorted(logs.items()) if k != "learning_rate")
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            log.info("epoch %d/%d %s lr=%.2g (%.1fs)", epoch + 1, epochs, parts, lr, time.perf_counter() - self._t)

    return EpochLog()


def fit(x_train, y_train, x_val, y_val, recipe: Recipe):
    """Train a fresh model; return (model, history dict, seconds)."""
    import keras

    from ml.model import build_model

    seed_everything(recipe.seed)
    model = build_model(recipe.input_scale, recipe.learning_rate, recipe.mixed_precision)
    mode = lambda m: "max" if ("auc" in m or "accuracy" in m) else "min"  # noqa: E731
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(
            monitor=recipe.reduce_lr_monitor,
            mode=mode(recipe.reduce_lr_monitor),
            factor=recipe.reduce_lr_factor,
            patience=recipe.reduce_lr_patience,
            min_lr=recipe.min_lr,
            verbose=0,
        ),
        keras.callbacks.EarlyStopping(
            monitor=recipe.early_stop_monitor,
            mode=mode(recipe.early_stop_monitor),
            patience=recipe.early_stop_patience,
            restore_best_weights=True,
            verbose=0,
        ),
        _epoch_logger(recipe.epochs),
    ]
    t0 = time.perf_counter()
    # Frames stay uint8 (4x smaller than float32): the model's float32 Input casts each batch.
    hist = model.fit(
        np.asarray(x_train),
        np.asarray(y_train, np.float32),
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        validation_data=(np.asarray(x_val), np.asarray(y_val, np.float32)),
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    return model, history, seconds


def predict(model, x, batch_size: int = 1024) -> np.ndarray:
    """Probabilities for padded frames (uint8 is fine: the model casts per batch)."""
    return model.predict(np.asarray(x), batch_size=batch_size, verbose=0).reshape(-1).astype(np.float64)


def save_curves(history: dict, path) -> str:
    """The tutorial's ``eva_plot``: accuracy and loss, train vs validation, per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, label in ((axes[0], "accuracy", "accuracy"), (axes[1], "loss", "loss")):
        ax.plot(epochs, history.get(key, []), label="train")
        ax.plot(epochs, history.get("val_" + key, []), label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle("turkey model training curves")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return str(path)


def save_model(model, path) -> str:
    with atomic_output(path) as tmp:
        model.save(tmp)
    return str(path)
