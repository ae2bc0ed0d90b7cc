"""ml.scoring.forward against its reference, Keras: the NumPy forward pass of a published model gives what
keras.Model.predict gives; an architecture it does not know is left to Keras."""

import numpy as np
import pytest

from ml.scoring import forward


def _frames(n=300, seed=0):
    x = np.random.default_rng(seed).integers(0, 256, (n, 10, 128)).astype(np.uint8)
    x[: n // 4, :6] = 0  # short clips: zeros before the frames, as pad_frames leaves them
    return x


def test_the_numpy_forward_pass_scores_like_keras(trained):
    import keras

    import ml.model  # noqa: F401

    path = trained.model_dir / "model.keras"
    x = _frames()
    np.testing.assert_allclose(forward.load(path).predict(x), keras.models.load_model(path, compile=False)
                               .predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_a_rescaled_input_is_read_and_an_average_is_left_to_keras(tmp_path):
    from ml.model import average_models, build_model
    from ml.train import save_model

    scaled = build_model(input_scale=1 / 255)
    save_model(scaled, tmp_path / "scaled.keras")
    x = _frames(50, seed=1)
    np.testing.assert_allclose(forward.load(tmp_path / "scaled.keras").predict(x), scaled.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    members = [build_model(name=f"member_{i}") for i in range(2)]
    save_model(average_models(members), tmp_path / "average.keras")
    assert forward.load(tmp_path / "average.keras") is None


def test_a_file_that_is_not_a_keras_zip_is_refused_with_one_line(tmp_path):
    from ml.errors import TurkeyError
    from ml.scoring.predict import load_model

    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TurkeyError, match="model.keras: cannot load the model"):
        load_model(bad)
