"""The seed model: BatchNorm -> BiGRU(128) -> attention pooling -> Dense(1, sigmoid), in Keras 3.

199,179 parameters (256 non-trainable), as in the reference tutorial (:func:`average_models` wraps
k trained copies into one model that averages their probabilities). The GRU keeps Keras' defaults
(tanh/sigmoid, reset_after=True, no recurrent dropout, not unrolled) so TensorFlow runs it on cuDNN
when a GPU is present. Importing this module imports Keras (and TensorFlow): keep it out of DAG parsing.
"""

from __future__ import annotations

import logging

import keras
from keras import ops

from ml.data import MAXLEN, N_FEATURES

log = logging.getLogger(__name__)

EXPECTED_PARAMS = 199_179
EXPECTED_NON_TRAINABLE = 256


@keras.saving.register_keras_serializable(package="turkey")
class AttentionPooling(keras.layers.Layer):
    """Feed-forward attention over time (Raffel & Ellis 2015), as in the tutorial's ``Attention`` layer.

    For input ``x`` of shape (batch, steps, features): ``e = tanh(x @ w + b)`` with one weight per
    feature and one bias per time step, ``a = exp(e) / (sum_t exp(e) + epsilon)`` (masked steps get
    zero weight), output ``sum_t a_t * x_t`` of shape (batch, features).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        """Create ``w`` (one weight per feature) and ``b`` (one bias per time step); steps must be fixed."""
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(f"AttentionPooling needs (batch, steps, features) with fixed steps, got {input_shape}")
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(input_shape[1],), initializer="zeros", name="b")

    def call(self, x, mask=None):
        """The attention-weighted sum over time of ``x``; masked steps get zero weight."""
        e = ops.tanh(ops.tensordot(x, ops.cast(self.w, x.dtype), axes=1) + ops.cast(self.b, x.dtype))
        a = ops.exp(e)
        if mask is not None:
            a = a * ops.cast(mask, a.dtype)
        a = a / (ops.sum(a, axis=1, keepdims=True) + keras.config.epsilon())
        return ops.sum(x * ops.expand_dims(a, -1), axis=1)

    def compute_output_shape(self, input_shape):
        """``(batch, features)``: the time axis is pooled away."""
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        """No mask downstream: the time axis no longer exists."""
        return None


def _compile(model, learning_rate: float):
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Nadam(learning_rate=learning_rate),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    return model


def build_model(
    input_scale: float = 1.0,
    learning_rate: float = 1e-3,
    mixed_precision: bool = False,
    name: str = "turkey_bigru_attention",
):
    """Build and compile the seed architecture.

    ``input_scale`` != 1 prepends a parameter-free ``Rescaling`` layer, so the saved model takes the raw
    0-255 frames whatever the recipe: scoring needs no side information.
    """
    if mixed_precision:
        keras.mixed_precision.set_dtype_policy("mixed_float16")
    else:
        keras.mixed_precision.set_dtype_policy("float32")
    layers = [keras.Input(shape=(MAXLEN, N_FEATURES), name="frames")]
    if input_scale != 1.0:
        layers.append(keras.layers.Rescaling(input_scale, name="scale"))
    layers += [
        keras.layers.BatchNormalization(momentum=0.98, name="batch_norm"),
        keras.layers.Bidirectional(keras.layers.GRU(128, return_sequences=True), name="bigru"),
        AttentionPooling(name="attention"),
        keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="output"),
    ]
    return _compile(keras.Sequential(layers, name=name), learning_rate)


def average_models(members, learning_rate: float = 1e-3, name: str = "turkey_seed_average"):
    """One compiled Keras model whose output is the mean of the ``members``' probabilities.

    The members (uniquely named models of the seed architecture, already trained) become nested layers,
    so the result saves to one ``.keras`` file, loads with ``keras.models.load_model`` like a single
    model and takes the same (batch, 10, 128) frames. Parameters: ``len(members)`` x 199,179.
    """
    members = list(members)
    if len(members) < 2:
        raise ValueError("averaging needs at least two member models")
    frames = keras.Input(shape=(MAXLEN, N_FEATURES), name="frames")
    mean = keras.layers.Average(dtype="float32", name="seed_average")([m(frames) for m in members])
    return _compile(keras.Model(frames, mean, name=name), learning_rate)


def count_params(model) -> tuple[int, int]:
    """(total, non_trainable) parameter counts."""
    non_trainable = sum(int(ops.size(w)) for w in model.non_trainable_weights)
    return model.count_params(), non_trainable
