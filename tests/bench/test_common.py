"""bench.common: tables, figures against targets, result lines, child processes, demo data."""

from __future__ import annotations

import json
import sys

import pytest

from bench import common


def test_md_table_formats_and_escapes():
    lines = common.md_table(["name", "value"], [["a|b", 1234.5678], ["c", None], ["d", 7]]).splitlines()
    assert lines[:2] == ["| name | value |", "| :--- | ---: |"]
    assert lines[2:] == ["| a\\|b | 1,234.57 |", "| c | — |", "| d | 7 |"]
    assert common.fmt(float("nan")) == "—" and common.fmt(True) == "True" and common.fmt(2.5, 0) == "2"


def test_median_and_mean_sd():
    assert common.median([3, None, 1, 2]) == 2 and common.median([4, 1, 2, 3]) == 2.5
    m, sd = common.mean_sd([1.0, 2.0, 3.0])
    assert m == 2.0 and sd == pytest.approx(1.0)
    assert common.mean_sd([5.0]) == (5.0, 0.0)


def test_figures_compare_with_their_target_generically():
    ok = common.Figure("ratio", 1.2, "x", "<=", 1.3)
    bad = common.Figure("auc", 0.5, "", ">", 0.8, digits=4)
    assert (ok.shown(), ok.target_text(), ok.verdict()) == ("1.20 x", "<= 1.30 x", "met")
    assert bad.verdict() == "**NOT met**" and bad.target_text() == "> 0.8000"
    assert common.Figure("none", None, "s", "<=", 8).verdict() == "not measured"
    assert common.Figure("plain", 3.0, "s").verdict() == ""
    table = common.figures_table([ok, bad]).splitlines()
    assert table[2] == "| ratio | 1.20 x | <= 1.30 x | met |" and "NOT met" in table[3]


def test_result_lines_round_trip_and_the_last_wins(capsys):
    import numpy as np

    common.emit({"a": 1, "v": np.arange(2)})
    common.emit({"a": 2})
    assert common.parse_result(capsys.readouterr().out) == {"a": 2}
    with pytest.raises(RuntimeError, match="no result line"):
        common.parse_result("nothing here")


def test_run_proc_reports_status_output_and_peak_rss(tmp_path):
    p = common.run_proc([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], timeout=60, log_path=tmp_path / "l")
    assert p.rc == 3 and "hi" in p.output and (tmp_path / "l").read_text().strip() == "hi" and p.maxrss_mib > 1
    with pytest.raises(RuntimeError, match="exited with 3"):
        p.check()
    p = common.run_proc([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2)
    assert p.timed_out and p.rc != 0


def test_child_env_allows_bytecode_and_sets_no_pythonpath(monkeypatch):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    env = common.child_env(EXTRA=3)
    assert "PYTHONDONTWRITEBYTECODE" not in env and "PYTHONPATH" not in env and env["EXTRA"] == "3"
    assert env["PATH"].startswith(str(common.Path(sys.executable).parent)) and env["GX_ANALYTICS_ENABLED"] == "false"


def test_chunked_records_are_the_same_whatever_the_chunk_and_ensure_demo_caches(tmp_path, monkeypatch):
    from ml.data import read_records
    from ml.demo import write_json

    monkeypatch.setattr(common, "CHUNK", 4)
    recs = list(common.chunked_records(9, seed=1, split_code=0, with_labels=True))
    assert len(recs) == 9 and len({r["vid_id"] for r in recs}) == 9 and all("is_turkey" in r for r in recs)
    assert recs[:4] == list(common.chunked_records(4, seed=1, split_code=0, with_labels=True))
    rec = read_records(write_json(iter(recs), tmp_path / "t.json"))
    assert len(rec) == 9 and (rec.labels >= 0).all()

    monkeypatch.setattr(common, "OUT", tmp_path)
    first = common.ensure_demo(40, 20)
    again = common.ensure_demo(40, 20)
    assert not first["cached"] and again["cached"] and again["train"] == first["train"]
    assert len(json.loads(common.Path(first["test"]).read_text())) == 20
    hold = common.ensure_holdout(first["train"], 10)
    ids = {r["vid_id"] for r in json.loads(common.Path(hold["path"]).read_text())}
    assert len(ids) == 10 and not ids & {r["vid_id"] for r in json.loads(common.Path(first["train"]).read_text())}


def test_machine_info_and_git_state_are_plain_facts():
    m = common.machine_info()
    assert m["usable_cores"] >= 1 and len(m["loadavg"]) == 3
    assert common.git_state()
