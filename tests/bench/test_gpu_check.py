"""bench.gpu_check on the CPU, by its pieces: tiny data, one worker step in process, the driver with its worker
steps stubbed, the rendering, and the one-line failures."""

from __future__ import annotations

import time

import pytest

from bench import gpu_check


def test_install_without_a_wheelhouse_directory_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "no-such-wheelhouse"
    assert gpu_check.main(["--wheelhouse", str(missing), "--budget-s", "30", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip().splitlines() == [f"gpu_check: wheelhouse {missing} is not a directory"]
    assert not (tmp_path / "gpu_check.json").exists()


@pytest.fixture(scope="module")
def grid():
    """The grid worker on the CPU at tiny sizes: the cuDNN evidence (refused here) and two cells."""
    mp = pytest.MonkeyPatch()
    mp.setattr(gpu_check, "SMOKE_RECORDS", 16)
    mp.setattr(gpu_check, "BATCHES", (8,))
    try:
        yield gpu_check.worker_grid(cpu_only=True, deadline=time.monotonic() + 120)
    finally:
        mp.undo()


def test_the_grid_worker_runs_every_cell_and_finds_no_cudnn_on_the_cpu(grid):
    assert grid["gpus"] == [] and grid["cudnn"]["on_cudnn"] is False and grid["cudnn"]["forced_use_cudnn_ran"] is False
    assert [(g["batch"], g["mixed_precision"]) for g in grid["grid"]] == [(8, False), (8, True)]
    assert all(g["records"] == 16 and g["samples_per_s"] > 0 for g in grid["grid"])


def test_cells_past_the_deadline_are_skipped_and_say_so(monkeypatch):
    monkeypatch.setattr(gpu_check, "SMOKE_RECORDS", 8)
    monkeypatch.setattr(gpu_check, "cudnn_evidence", lambda x, y: {})
    out = gpu_check.worker_grid(cpu_only=True, deadline=time.monotonic() - 1)
    assert {g["skipped"] for g in out["grid"]} == {"time budget spent"}


def test_the_driver_puts_the_steps_together_and_the_result_renders(grid):
    def run(kind, cpu_only, deadline, hide_gpu):
        return {**grid, "tf_version": "x"} if kind == "grid" else {"device": "CPU", "epochs": 1, "val_auc": 0.7,
                                                                    "seconds": 1.0}

    r = gpu_check.run_check(cpu_only=True, wheelhouse=None, skip_install=False, budget_s=60, run=run)
    assert r["install"] == "skipped" and r["auc"]["met"] and r["mode"].startswith("cpu-only")
    md = gpu_check.render(r)
    assert "cuDNN GRU: **no**" in md and "| 1x | 16 | 8 | on |" in md and "|Δ| 0.0000" in md
    (fig,) = gpu_check.figures({"check": r})
    assert fig.verdict() == "met" and fig.when == r["date"]


def test_without_a_saved_check_section_4_says_how_to_get_one():
    assert "None measured" in gpu_check.render_section({"check": None})
    assert gpu_check.figures({"check": None})[0].verdict() == "not measured"
