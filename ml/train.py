"""Epoch selection, seed averaging and the training loop (Keras 3), for a :class:`ml.config.Recipe`.

Epoch selection (``early_stop_monitor``, see :data:`EPOCH_CRITERIA` and :func:`select_epoch`) decides
which epoch's weights ship: by default the lowest validation loss (log loss rewards ranking and
calibration together; validation AUC alone can keep a badly calibrated epoch). ``ensemble_seeds`` = k > 1
trains k members (seeds ``seed`` .. ``seed + k - 1``, same split) and ships one Keras model averaging their
probabilities. Both choices were made by ``python -m bench.recipe_sweep``; its tables are in docs/model.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from ml.config import EPOCH_CRITERIA, Recipe
from ml.fsutil import atomic_output

log = logging.getLogger(__name__)




class EpochSelector:
    """Which epoch's weights to keep, fed one epoch's validation logs at a time (no Keras needed).

    :meth:`update` returns ``(is_best, stop)``: whether this epoch becomes the kept one, and whether
    ``patience`` epochs have passed without a new kept epoch (as Keras' EarlyStopping counts them).
    """

    def __init__(self, criterion: str, patience: int, min_delta: float = 0.0):
        if criterion not in EPOCH_CRITERIA:
            raise ValueError(f"unknown epoch criterion {criterion!r}; choose from {', '.join(EPOCH_CRITERIA)}")
        self.criterion, self.patience, self.min_delta = criterion, patience, abs(min_delta)
        self.best_epoch: int | None = None
        self.best_logs: dict = {}
        self.epoch = -1

    def _better(self, logs: dict) -> bool:
        best, d = self.best_logs, self.min_delta
        if self.criterion == "val_loss":
            return logs["val_loss"] < best["val_loss"] - d
        if self.criterion in ("val_auc", "val_accuracy"):
            return logs[self.criterion] > best[self.criterion] + d
        # val_auc_then_loss
        if logs["val_auc"] > best["val_auc"] + d:
            return True
        return logs["val_auc"] >= best["val_auc"] - d and logs["val_loss"] < best["val_loss"]

    def update(self, logs: dict) -> tuple[bool, bool]:
        """Feed the next epoch's validation ``logs``; return ``(is_best, stop)``."""
        self.epoch += 1
        logs = {k: float(v) for k, v in logs.items()}
        if self.best_epoch is None or self._better(logs):
            self.best_epoch, self.best_logs = self.epoch, logs
            return True, False
        return False, self.epoch - self.best_epoch >= self.patience


def select_epoch(history: dict, criterion: str, patience: int | None = None, min_delta: float = 0.0) -> int:
    """The 0-based epoch whose weights :func:`fit` keeps for this per-epoch ``history`` (Keras' dict of lists).

    Replays :class:`EpochSelector` over the history; with ``patience``, epochs after the stop are ignored.
    """
    n = len(history["val_loss"])
    sel = EpochSelector(criterion, patience if patience is not None else n + 1, min_delta)
    for i in range(n):
        _, stop = sel.update({k: v[i] for k, v in history.items() if k.startswith("val_")})
        if stop:
            break
    return sel.best_epoch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (through Keras) and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def describe_device() -> str:
    """``CPU`` or ``GPU: <names> (cuDNN GRU)``; turns on memory growth for each GPU found."""
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


def _selection_callback(selector: EpochSelector):
    import keras

    class KeepSelectedEpoch(keras.callbacks.Callback):
        """Early stopping driven by an :class:`EpochSelector`; the selected epoch's weights restored at the end."""

        def on_train_begin(self, logs=None):
            self.weights = None

        def on_epoch_end(self, epoch, logs=None):
            is_best, stop = selector.update({k: v for k, v in (logs or {}).items() if k.startswith("val_")})
            if is_best:
                self.weights = self.model.get_weights()
            if stop:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)

    return KeepSelectedEpoch()


def _fit_one(x_train, y_train, x_val, y_val, recipe: Recipe, name: str = "turkey_bigru_attention"):
    import keras

    from ml.model import build_model

    seed_everything(recipe.seed)
    model = build_model(recipe.input_scale, recipe.learning_rate, recipe.mixed_precision, name=name)
    mode = lambda m: "max" if ("auc" in m or "accuracy" in m) else "min"  # noqa: E731
    selector = EpochSelector(recipe.early_stop_monitor, recipe.early_stop_patience, recipe.early_stop_min_delta)
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(
            monitor=recipe.reduce_lr_monitor,
            mode=mode(recipe.reduce_lr_monitor),
            factor=recipe.reduce_lr_factor,
            patience=recipe.reduce_lr_patience,
            min_lr=recipe.min_lr,
            verbose=0,
        ),
        _selection_callback(selector),
        _epoch_logger(recipe.epochs),
    ]
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
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    log.info(
        "kept epoch %d of %d (%s): %s",
        selector.best_epoch + 1,
        len(history.get("loss", [])),
        recipe.early_stop_monitor,
        " ".join(f"{k}={v:.4f}" for k, v in sorted(selector.best_logs.items())),
    )
    return model, history, selector.best_epoch


def fit(x_train, y_train, x_val, y_val, recipe: Recipe):
    """Train a fresh model; return (model, history, seconds).

    ``history`` is Keras' per-epoch dict of lists plus ``selected_epoch`` (1-based: whose weights were
    kept) and ``epoch_selection``. With ``recipe.ensemble_seeds`` = k > 1 the model averages k members
    trained with seeds ``seed`` .. ``seed + k - 1`` on the same split; the per-epoch lists are member 0's
    and ``members`` holds every member's seed, epochs run and selected epoch.
    """
    t0 = time.perf_counter()
    k = recipe.ensemble_seeds
    members, summaries, first_history = [], [], None
    for i in range(k):
        rc = dataclasses.replace(recipe, seed=recipe.seed + i, ensemble_seeds=1)
        model, history, best = _fit_one(
            x_train, y_train, x_val, y_val, rc, name="turkey_bigru_attention" if k == 1 else f"member_{i}"
        )
        members.append(model)
        summaries.append({"seed": rc.seed, "epochs_run": len(history.get("loss", [])), "selected_epoch": best + 1})
        first_history = first_history or history
    from ml.model import average_models

    model = members[0] if k == 1 else average_models(members, recipe.learning_rate)
    seconds = time.perf_counter() - t0
    out = {**first_history, "selected_epoch": summaries[0]["selected_epoch"], "epoch_selection": recipe.early_stop_monitor}
    if k > 1:
        out["members"] = summaries
    return model, out, seconds


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
    """Save a Keras model to ``path`` (``.keras``) atomically; return the path."""
    with atomic_output(path) as tmp:
        model.save(tmp)
    return str(path)
