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


@pytest.mark.slow
def test_seed_average_is_one_model_that_loads_and_scores_like_a_single_model(tmp_path):
    """ensemble_seeds=2: one .keras file; a fresh process loads it (and a single model) after `import ml`
    and gets the members' mean."""
    from ml.config import make_recipe
    from ml.train import fit, predict, save_model

    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (48, 10, 128)).astype(np.uint8)
    y = (x[:, :, :8].mean(axis=(1, 2)) > 127).astype(np.int8)
    rc = make_recipe("default", epochs=1, ensemble_seeds=2, seed=11)
    model, history, _ = fit(x[:32], y[:32], x[32:], y[32:], rc)
    assert [m["seed"] for m in history["members"]] == [11, 12]
    assert count_params(model) == (2 * EXPECTED_PARAMS, 2 * EXPECTED_NON_TRAINABLE)
    members = [model.get_layer(f"member_{i}") for i in range(2)]
    member_mean = np.mean([predict(m, x) for m in members], axis=0)
    assert not np.allclose(predict(members[0], x), predict(members[1], x))  # two different seeds
    np.testing.assert_allclose(predict(model, x), member_mean, rtol=1e-6, atol=1e-7)

    save_model(model, tmp_path / "model.keras")
    save_model(build_model(), tmp_path / "single.keras")
    np.save(tmp_path / "x.npy", x)
    # A fresh process: `import ml` (no TensorFlow yet) is enough for keras.models.load_model to find our
    # layer later, for a single model and for the average alike.
    code = (
        "import sys, numpy as np, ml; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "import keras; from ml.train import predict; d = sys.argv[1]; "
        "print(type(keras.models.load_model(d + '/single.keras').get_layer('attention')).__name__); "
        "np.save(d + '/p.npy', predict(keras.models.load_model(d + '/model.keras'), np.load(d + '/x.npy')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("AttentionPooling")
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), member_mean, rtol=1e-6, atol=1e-7)
