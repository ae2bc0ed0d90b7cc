"""bench.gpu_check: the smoke mode runs every step on the CPU and writes a result that renders; failures are one line."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import gpu_check
from bench.common import REPO


def test_cpu_only_smoke_runs_every_step_and_renders(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--cpu-only", "--out", str(tmp_path), "--budget-s", "400"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert r["mode"].startswith("cpu-only") and r["gpus"] == []
    assert r["cudnn"]["on_cudnn"] is False and r["cudnn"]["forced_use_cudnn_ran"] is False  # no GPU: refused
    cells = [g for g in r["grid"] if "skipped" not in g]
    assert {(g["batch"], g["mixed_precision"]) for g in cells} == {(32, False), (32, True), (512, False), (512, True)}
    assert all(g["samples_per_s"] > 0 and g["epoch_s"] > 0 for g in cells)
    assert 0.0 <= r["auc"]["cpu"]["val_auc"] <= 1.0 and r["auc"]["met"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert md == gpu_check.render(r) + "\n" and "| 1x | 120 | 512 | on |" in md


def test_install_without_network_or_wheelhouse_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "no-such-wheelhouse"
    assert gpu_check.main(["--wheelhouse", str(missing), "--budget-s", "30", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"gpu_check: wheelhouse {missing} is not a directory"]
    assert not (tmp_path / "gpu_check.json").exists()
