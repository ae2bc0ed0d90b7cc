import json
import multiprocessing as mp
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml.errors import GateError, TurkeyError
from ml.pipeline import accuracy_gate, champion_gate
from ml.registry import VERSION_FILES, Registry, make_version


def _candidate(tmp_path, name, n_rows=5, tag="x"):
    d = tmp_path / name
    d.mkdir()
    for f in VERSION_FILES:
        (d / f).write_text(f"{tag}:{f}\n")
    (d / "submission.csv").write_text("vid_id,is_turkey\n" + "".join(f"id{i},0.{i}\n" for i in range(n_rows)))
    (d / "metrics.json").write_text(json.dumps({"val_accuracy": 0.9, "val_auc": 0.95}))
    return d


def test_versions_are_deterministic_per_run_and_sort_by_time():
    t1, t2 = datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 8, 3, tzinfo=UTC)
    assert make_version(t1, "d", "r1") == make_version(t1, "d", "r1")
    assert make_version(t1, "d", "r1") != make_version(t1, "d", "r2")
    assert sorted([make_version(t2, "d", "a"), make_version(t1, "d", "z")])[0] == make_version(t1, "d", "z")


def test_register_is_immutable_and_idempotent(tmp_path):
    reg = Registry(tmp_path / "art")
    c = _candidate(tmp_path, "c1", tag="first")
    path, created = reg.register("v1", c, {"run_id": "r1"})
    assert created and (Path(path) / "model.keras").read_text() == "first:model.keras\n"
    c2 = _candidate(tmp_path, "c2", tag="second")
    path2, created2 = reg.register("v1", c2, {"run_id": "r1"})  # a retried publish task
    assert not created2 and path2 == path and (Path(path) / "model.keras").read_text() == "first:model.keras\n"
    assert reg.versions() == ["v1"]
    assert not [p for p in os.listdir(reg.models) if p != "v1"]  # no temporary leftovers


def test_incomplete_candidate_is_refused(tmp_path):
    c = _candidate(tmp_path, "c")
    (c / "model.keras").unlink()
    with pytest.raises(TurkeyError, match="model.keras"):
        Registry(tmp_path / "art").register("v1", c, {})


def test_promote_rollback_and_audit(tmp_path):
    reg = Registry(tmp_path / "art")
    reg.register("v1", _candidate(tmp_path, "c1", 3), {})
    reg.register("v2", _candidate(tmp_path, "c2", 4), {})
    reg.promote("v1", reason="first")
    reg.promote("v2", reason="better")
    assert reg.champion_version() == "v2"
    assert Path(reg.submission_path()).read_text().count("\n") == 5
    reg.rollback("v1", user="alice")
    assert reg.champion_version() == "v1" and reg.champion()["previous"] == "v2"
    assert Path(reg.submission_path()).read_text().count("\n") == 4
    actions = [(e["action"], e["version"]) for e in reg.audit()]
    assert actions == [("promote", "v1"), ("promote", "v2"), ("rollback", "v1")]
    assert reg.describe("champion")["version"] == "v1"
    with pytest.raises(TurkeyError):
        reg.rollback("nope")


def test_gates():
    assert accuracy_gate({"val_accuracy": 0.9}, 0.85)["passed"]
    with pytest.raises(GateError, match=r"0\.8000.*0\.8500"):
        accuracy_gate({"val_accuracy": 0.8}, 0.85)
    cmp = {"method": "delong", "confidence": 0.95, "n": 300, "challenger_auc": 0.90, "champion_auc": 0.93,
           "difference": -0.03, "ci_low": -0.04, "ci_high": -0.02}  # more cases: tests/test_gate.py
    m = {"val_auc": 0.90, "champion_comparison": cmp}
    assert champion_gate({"val_auc": 0.9}, None, 0.01)["promote"]
    assert not champion_gate(m, "v1", 0.01)["promote"]
    assert champion_gate(m, "v1", 0.05)["promote"]
    forced = champion_gate(m, "v1", 0.01, force_promote=True)
    assert forced["promote"] and "forced" in forced["reason"]


def _reader(path, stop_at, bad):
    import time

    while time.time() < stop_at:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        lines = text.splitlines()
        if not text.endswith("\n") or lines[0] != "vid_id,is_turkey" or len(lines) not in (2001, 3001):
            bad.value += 1


def test_reader_racing_a_publish_never_sees_a_partial_file(tmp_path):
    import time

    reg = Registry(tmp_path / "art")
    reg.register("v1", _candidate(tmp_path, "c1", 2000), {})
    reg.register("v2", _candidate(tmp_path, "c2", 3000), {})
    reg.promote("v1", reason="start")
    bad = mp.Value("i", 0)
    proc = mp.get_context("fork").Process(
        target=_reader, args=(Path(reg.submission_path()), time.time() + 1.5, bad)
    )
    proc.start()
    for i in range(40):
        reg.promote("v2" if i % 2 == 0 else "v1", reason="flip")
    proc.join()
    assert bad.value == 0
    assert os.path.getsize(reg.submission_path()) > 0


def test_registry_on_an_object_store_url(tmp_path):
    """Any fsspec URL works as the registry root (memory:// stands in for s3:// here)."""
    import fsspec

    root = f"memory://registry-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    assert reg.versions() == [] and reg.champion() is None
    reg.register("v1", _candidate(tmp_path, "c1", 3), {"run_id": "r1"})
    _, created = reg.register("v1", _candidate(tmp_path, "c1b", 9), {"run_id": "r1"})
    assert not created
    # A version whose manifest (uploaded last) is missing is not published yet.
    fs, base = fsspec.core.url_to_fs(root)
    fs.pipe_file(f"{base}/models/v0-partial/model.keras", b"half")
    reg.register("v2", _candidate(tmp_path, "c2", 4), {"run_id": "r2"})
    assert reg.versions() == ["v1", "v2"]
    reg.promote("v1", reason="first")
    reg.promote("v2", reason="better")
    reg.rollback("v1", user="bob")
    assert reg.champion_version() == "v1"
    assert fs.cat_file(f"{base}/submissions/latest.csv").count(b"\n") == 4
    assert reg.submission_path().startswith("memory://")
    assert [e["action"] for e in reg.audit()] == ["promote", "promote", "rollback"]
    local = reg.fetch_model("v2", tmp_path / "dl")
    assert Path(local).read_text() == "x:model.keras\n"
    assert reg.describe("champion")["model"].startswith("memory://")
