"""bench.scheduler_sweep without a deployment: CPU seconds of a process tree, one value measured, the saved result."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from types import SimpleNamespace

from bench import scheduler_sweep


def test_cpu_seconds_of_this_process_tree():
    assert scheduler_sweep.cpu_seconds(os.getpid()) > 0


def test_a_sweep_writes_its_result_and_prints_the_table(tmp_path, monkeypatch, capsys):
    calls = []

    @contextmanager
    def fake_deployment(**env):
        calls.append(env)
        yield SimpleNamespace(procs={"scheduler": SimpleNamespace(pid=os.getpid())}), None, None

    def fake_run(topo, api, watch, conf):
        return {"wall": 30.0, "parts": {"scheduling": 2.0}, "tasks": {"a": {}, "b": {}}}

    monkeypatch.setattr(scheduler_sweep, "deployment", fake_deployment)
    monkeypatch.setattr(scheduler_sweep, "run_deployed", fake_run)
    monkeypatch.setattr(scheduler_sweep, "land", lambda topo, data: None)
    monkeypatch.setattr(scheduler_sweep, "ensure_demo", lambda n_train, n_test: {})
    monkeypatch.setattr(scheduler_sweep, "SWEEP_RESULT", tmp_path / "sweep.json")
    assert scheduler_sweep.main(["--values", "1,0.25", "--repeats", "1", "--idle", "0"]) == 0
    assert calls == [{scheduler_sweep.SETTING: "1"}, {scheduler_sweep.SETTING: "0.25"}]
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["value"] for r in saved["results"]] == ["1", "0.25"] and saved["results"][0]["tasks"] == 2
    assert saved["meta"]["command"].endswith("--values 1,0.25 --repeats 1 --idle 0")
    assert "| `0.25` | 30.0 | 30.0 | 2.00 | 1.00 |" in capsys.readouterr().out
