"""bench.scale: the pad stage on small arrays (the pipeline's own split), section 2 rendered with its figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import common, scale


def test_the_pad_stage_splits_like_the_pipeline_and_saves_the_arrays(tmp_path, capsys):
    from ml.data import save_arrays
    from ml.prepare import split_roles

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 11, 40).astype(np.int32)
    frames = rng.integers(0, 256, (int(lengths.sum()), 128)).astype(np.uint8)
    ids, labels = np.array([f"id{i}" for i in range(40)], dtype=object), np.arange(40) % 2
    save_arrays(tmp_path / "train.npz", ids=ids, frames=frames, lengths=lengths, labels=labels)
    save_arrays(tmp_path / "test.npz", ids=ids, frames=frames, lengths=lengths)
    assert common.child_main(scale.run_stage, ["--args", json.dumps({"stage": "pad", "work": str(tmp_path)})]) == 0
    r = common.parse_result(capsys.readouterr().out)
    assert r["records"] == 80 and r["seconds"] >= 0 and {"load_seconds", "save_seconds"} <= set(r)
    from ml.data import load_arrays

    split = load_arrays(tmp_path / "split.npz")
    assert len(split["y_train"]) == len(split_roles(ids, labels, 0.25)[0]) and split["x_val"].shape[1:] == (10, 128)
    assert load_arrays(tmp_path / "test_padded.npz")["x"].shape == (40, 10, 128)


def stages(k: int, rss: float) -> dict:
    """One scale's stage results, made up: seconds grow with the records ``k`` times."""
    base = {"process_wall": 5.0, "peak_rss_mib": rss}
    return {"validate_train": {**base, "seconds": 0.6 * k, "records": 1195 * k, "gx_startup_seconds": 3.0,
                               "save_seconds": 0.01, "file_mib": 5.0 * k, "worker_peak_rss_mib": 300.0 if k > 1 else 0.0},
            "validate_test": {**base, "seconds": 0.6 * k, "records": 1196 * k, "gx_startup_seconds": 3.0,
                              "save_seconds": 0.01, "file_mib": 5.0 * k, "worker_peak_rss_mib": 0.0},
            "pad": {**base, "seconds": 0.01 * k, "records": 2391 * k, "load_seconds": 0.0, "save_seconds": 0.0},
            "train_epoch": {**base, "seconds": 6.0 * k ** 0.9, "records": 866 * k, "n_val": 329 * k, "batch_size": 32,
                            "steps": 28 * k},
            "score": {**base, "seconds": 1.0 * k ** 0.8, "records": 1196 * k, "load_model_seconds": 4.0}}


RESULT = {"scales": [{"name": f"{k}x", "n_train": 1195 * k, "n_test": 1196 * k, "stages": stages(k, 250.0 * k)}
                     for k in (1, 10)]}


def test_section_2_renders_every_stage_and_the_growth_between_scales():
    doc = scale.render(RESULT)
    assert doc.count("| 10x |") == 5 and "parse workers' largest peak 300 MiB" in doc and "1x -> 10x" in doc
    assert "| split + pad train and test | x1.00 |" in doc


def test_section_2_figures_the_cold_parse_the_largest_process_and_the_worst_growth():
    parse, rss, growth = scale.figures(RESULT)
    assert parse.value == pytest.approx(9.0) and parse.verdict() == "**NOT met**"
    assert rss.value == 2500.0 and rss.verdict() == "**NOT met**"
    assert growth.value == pytest.approx(1.0) and growth.verdict() == "met"
