import subprocess
import sys

import numpy as np
import pytest

from ml.model import EXPECTED_NON_TRAINABLE, EXPECTED_PARAMS, AttentionPooling, build_model, count_params


def attention_reference(x, w, b, eps=1e-7):
    e = np.tanh(x @ w + b)  # (batch, steps)
    a = np.exp(e)
    a = a / (a.sum(axis=1, keepdims=True) + eps)
    return (x * a[..., None]).sum(axis=1)


def test_attention_matches_numpy_reference():
    import keras

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (4, 10, 6)).astype(np.float32)
    layer = AttentionPooling()
    layer.build((None, 10, 6))
    w = rng.normal(0, 1, 6).astype(np.float32)
    b = rng.normal(0, 0.5, 10).astype(np.float32)
    layer.set_weights([w, b])
    got = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(got, attention_reference(x, w, b), rtol=1e-5, atol=1e-5)
    assert got.shape == (4, 6)


@pytest.mark.parametrize("scale", [1.0, 1 / 255])
def test_parameter_count_matches_tutorial(scale):
    total, non_trainable = count_params(build_model(input_scale=scale))
    assert (total, non_trainable) == (EXPECTED_PARAMS, EXPECTED_NON_TRAINABLE) == (199_179, 256)


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    import keras

    from ml.train import save_model

    model = build_model(input_scale=1 / 255)
    x = np.random.default_rng(0).integers(0, 256, (16, 10, 128)).astype(np.float32)
    model.fit(x, (x.mean(axis=(1, 2)) > 127).astype(np.float32), epochs=1, verbose=0)
    path = save_model(model, tmp_path / "model.keras")
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_load_model_after_import_ml_in_a_fresh_process(tmp_path):
    """`import ml` (no TensorFlow) is enough for keras.models.load_model to find our layer later."""
    from ml.train import save_model

    save_model(build_model(), tmp_path / "model.keras")
    code = (
        "import sys, ml; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "import keras; m = keras.models.load_model(sys.argv[1]); "
        "print(type(m.get_layer('attention')).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("AttentionPooling")
