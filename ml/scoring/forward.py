"""The published model's forward pass in NumPy, read straight from ``model.keras``: scoring without
importing TensorFlow (its start-up is most of a small scoring run).

A ``model.keras`` file is a zip of ``config.json`` and ``model.weights.h5``. :func:`load` reads both and,
when the config is the architecture of :func:`ml.model.build_model` (an optional ``Rescaling``, then
BatchNormalization -> Bidirectional(GRU) -> AttentionPooling -> Dense(sigmoid)), returns a
:class:`NumpyModel` that computes what Keras computes, in float32: Keras 3's GRU with ``reset_after``,
``sigmoid`` gates and ``tanh`` candidate, the forward and backward outputs concatenated, the attention of
:class:`ml.model.AttentionPooling`. Anything else (a seed average, another architecture) returns None and
is scored by Keras. ``tests/ml/scoring/test_forward.py`` holds it to ``keras.Model.predict``.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile

import numpy as np

log = logging.getLogger(__name__)

_LAYERS = ["InputLayer", "BatchNormalization", "Bidirectional", "AttentionPooling", "Dense"]
_EPS = 1e-7  # keras.config.epsilon(), as AttentionPooling uses it


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class NumpyModel:
    """The seed architecture's inference with the weights of one ``model.keras`` (``predict`` as Keras')."""

    def __init__(self, scale: float, bn: dict, gru: dict, attention: tuple, dense: tuple):
        self.scale, self.bn, self.gru, self.attention, self.dense = scale, bn, gru, attention, dense

    def _gru(self, x, kernel, recurrent, bias, reverse: bool):
        n, steps, _ = x.shape
        units = recurrent.shape[0]
        xs = x @ kernel + bias[0]  # (n, steps, 3 units): z, r, candidate
        h = np.zeros((n, units), dtype=np.float32)
        out = np.empty((n, steps, units), dtype=np.float32)
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            hs = h @ recurrent + bias[1]
            z = _sigmoid(xs[:, t, :units] + hs[:, :units])
            r = _sigmoid(xs[:, t, units: 2 * units] + hs[:, units: 2 * units])
            candidate = np.tanh(xs[:, t, 2 * units:] + r * hs[:, 2 * units:])
            h = z * h + (1.0 - z) * candidate
            out[:, t] = h
        return out

    def predict(self, x, batch_size: int = 4096, verbose: int = 0) -> np.ndarray:
        """Probabilities (n, 1) for padded frames (n, steps, 128), any numeric dtype."""
        outs = []
        for start in range(0, len(x), batch_size):
            v = np.asarray(x[start: start + batch_size], dtype=np.float32) * np.float32(self.scale)
            b = self.bn
            v = (v - b["mean"]) / np.sqrt(b["var"] + b["eps"]) * b["gamma"] + b["beta"]
            seq = np.concatenate([self._gru(v, *self.gru["forward"], reverse=False),
                                  self._gru(v, *self.gru["backward"], reverse=True)], axis=-1)
            w, bias = self.attention
            a = np.exp(np.tanh(seq @ w + bias))
            a = a / (a.sum(axis=1, keepdims=True) + _EPS)
            pooled = (seq * a[..., None]).sum(axis=1)
            kernel, dense_bias = self.dense
            outs.append(_sigmoid(pooled @ kernel + dense_bias))
        return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)


def load(model_path) -> NumpyModel | None:
    """The :class:`NumpyModel` of ``model_path``, or None when its architecture is not the seed one."""
    import h5py

    with zipfile.ZipFile(model_path) as z:
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    if config.get("class_name") != "Sequential":
        return None
    layers = config["config"]["layers"]
    scale = 1.0
    if len(layers) > 1 and layers[1]["class_name"] == "Rescaling":
        scale, layers = float(layers[1]["config"]["scale"]), [layers[0], *layers[2:]]
    if [layer["class_name"] for layer in layers] != _LAYERS:
        return None
    cell = layers[2]["config"]["layer"]["config"]
    if (cell.get("activation"), cell.get("recurrent_activation"), cell.get("reset_after"),
            layers[2]["config"].get("merge_mode"), layers[4]["config"].get("activation")) != (
            "tanh", "sigmoid", True, "concat", "sigmoid"):
        return None
    with h5py.File(io.BytesIO(weights)) as f:
        def var(path, i):
            return np.asarray(f[f"layers/{path}/vars/{i}"], dtype=np.float32)

        bn = {"gamma": var("batch_normalization", 0), "beta": var("batch_normalization", 1),
              "mean": var("batch_normalization", 2), "var": var("batch_normalization", 3),
              "eps": np.float32(layers[1]["config"]["epsilon"])}
        gru = {d: tuple(var(f"bidirectional/{d}_layer/cell", i) for i in range(3)) for d in ("forward", "backward")}
        model = NumpyModel(scale, bn, gru, (var("attention_pooling", 0), var("attention_pooling", 1)),
                           (var("dense", 0), var("dense", 1)))
    return model
