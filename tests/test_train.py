import numpy as np
import pytest

from ml.data import read_records
from ml.evaluate import binary_metrics
from ml.prepare import split_and_pad
from ml.train import PRESETS, fit, make_recipe, predict


def test_presets():
    assert PRESETS["seed"].epochs == 16 and PRESETS["seed"].batch_size == 512 and PRESETS["seed"].input_scale == 1.0
    assert make_recipe("default", epochs=3).epochs == 3
    with pytest.raises(ValueError):
        make_recipe("nope")
    with pytest.raises(ValueError):
        make_recipe("default", bogus=1)


@pytest.mark.slow
def test_training_is_deterministic_and_learns(demo_dir):
    d = split_and_pad(read_records(demo_dir / "train.json"), 0.25, 42)
    rc = make_recipe("default", epochs=6, early_stop_patience=6)
    runs = []
    for _ in range(2):
        model, history, _ = fit(d["x_train"], d["y_train"], d["x_val"], d["y_val"], rc)
        runs.append((history["val_loss"], predict(model, d["x_val"])))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert binary_metrics(d["y_val"], runs[0][1])["roc_auc"] > 0.7  # demo signal is learnable in 6 epochs
