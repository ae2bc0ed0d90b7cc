import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from ml.errors import TurkeyError
from ml.registry import VERSION_FILES, Registry
from ml.registry.doctor import doctor, remove_orphans
from ml.registry.views import describe, version_rows
from tests.support.candidates import make_candidate, seeded_registry


def test_register_is_immutable_and_idempotent(tmp_path):
    reg = Registry(tmp_path / "art")
    c = make_candidate(tmp_path, "first")
    path, created = reg.register("v1", c, {"run_id": "r1"})
    assert created and (Path(path) / "model.keras").read_text() == "first:model.keras\n"
    c2 = make_candidate(tmp_path, "second")
    path2, created2 = reg.register("v1", c2, {"run_id": "r1"})  # a retried publish task
    assert not created2 and path2 == path and (Path(path) / "model.keras").read_text() == "first:model.keras\n"
    assert reg.versions() == ["v1"]
    assert not [p for p in os.listdir(reg.models) if p != "v1"]  # no temporary leftovers


def test_incomplete_candidate_is_refused(tmp_path):
    c = make_candidate(tmp_path, "c")
    (c / "model.keras").unlink()
    with pytest.raises(TurkeyError, match="model.keras"):
        Registry(tmp_path / "art").register("v1", c, {})


def test_promote_rollback_and_audit(tmp_path):
    reg = Registry(tmp_path / "art")
    reg.register("v1", make_candidate(tmp_path, "c1", rows=3), {})
    reg.register("v2", make_candidate(tmp_path, "c2", rows=4), {})
    reg.promote("v1", reason="first")
    reg.promote("v2", reason="better")
    assert reg.champion_version() == "v2"
    assert Path(reg.submission_path()).read_text().count("\n") == 5
    reg.rollback("v1", user="alice")
    assert reg.champion_version() == "v1" and reg.champion()["previous"] == "v2"
    assert Path(reg.submission_path()).read_text().count("\n") == 4
    actions = [(e["action"], e["version"]) for e in reg.audit()]
    assert actions == [("promote", "v1"), ("promote", "v2"), ("rollback", "v1")]
    assert describe(reg, "champion")["version"] == "v1"
    with pytest.raises(TurkeyError):
        reg.rollback("nope")




def _reader(path, started, stop, bad, reads):
    while True:
        done = stop.is_set()  # one more full read after the flips ended
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        lines = text.splitlines()
        if not text.endswith("\n") or lines[0] != "vid_id,is_turkey" or len(lines) not in (2001, 3001):
            bad.value += 1
        reads.value += 1
        started.set()
        if done:
            return


def test_reader_racing_a_publish_never_sees_a_partial_file(tmp_path):
    reg = Registry(tmp_path / "art")
    reg.register("v1", make_candidate(tmp_path, "c1", rows=2000), {})
    reg.register("v2", make_candidate(tmp_path, "c2", rows=3000), {})
    reg.promote("v1", reason="start")
    ctx = mp.get_context("fork")
    started, stop, bad, reads = ctx.Event(), ctx.Event(), ctx.Value("i", 0), ctx.Value("i", 0)
    proc = ctx.Process(target=_reader, args=(Path(reg.submission_path()), started, stop, bad, reads))
    proc.start()
    assert started.wait(60), "reader never read the file"
    first_reads = reads.value
    for i in range(40):  # every flip happens while the reader is reading in a loop
        reg.promote("v2" if i % 2 == 0 else "v1", reason="flip")
    stop.set()
    proc.join(60)
    assert proc.exitcode == 0 and bad.value == 0
    assert reads.value > first_reads  # it read during the flips, not only before them
    assert os.path.getsize(reg.submission_path()) > 0


def test_registry_on_an_object_store_url(tmp_path):
    """Any fsspec URL works as the registry root (memory:// stands in for s3:// here)."""
    import fsspec

    root = f"memory://registry-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    assert reg.versions() == [] and reg.champion() is None
    reg.register("v1", make_candidate(tmp_path, "c1", rows=3), {"run_id": "r1"})
    _, created = reg.register("v1", make_candidate(tmp_path, "c1b", rows=9), {"run_id": "r1"})
    assert not created
    # A version whose manifest (uploaded last) is missing is not published yet.
    fs, base = fsspec.core.url_to_fs(root)
    fs.pipe_file(f"{base}/models/v0-partial/model.keras", b"half")
    reg.register("v2", make_candidate(tmp_path, "c2", rows=4), {"run_id": "r2"})
    assert reg.versions() == ["v1", "v2"]
    reg.promote("v1", reason="first")
    reg.promote("v2", reason="better")
    reg.rollback("v1", user="bob")
    assert reg.champion_version() == "v1"
    assert fs.cat_file(f"{base}/submissions/latest.csv").count(b"\n") == 4
    assert reg.submission_path().startswith("memory://")
    assert [e["action"] for e in reg.audit()] == ["promote", "promote", "rollback"]
    local = reg.fetch_model("v2", tmp_path / "dl")
    assert Path(local).read_text() == "c2:model.keras\n"
    assert describe(reg, "champion")["model"].startswith("memory://")


# ---------------------------------------------------------------- transaction, damage, doctor (issue 10)
def test_manifest_records_every_file_hash_and_legacy_versions_stay_valid(tmp_path):
    from ml.registry import sha256_file

    reg = seeded_registry(tmp_path, champion=None, versions=("v1",))
    files = reg.manifest("v1")["files"]
    assert sorted(files) == sorted(VERSION_FILES)
    d = Path(reg.version_dir("v1"))
    assert all(files[f]["sha256"] == sha256_file(d / f) and files[f]["bytes"] == (d / f).stat().st_size for f in files)
    # a version written before per-file hashes (and before newer VERSION_FILES entries) is still promotable
    legacy = Path(reg.models) / "v0"
    legacy.mkdir()
    for f in ("model.keras", "submission.csv"):
        (legacy / f).write_text("vid_id,is_turkey\nold,0.5\n" if f.endswith(".csv") else "m")
    (legacy / "manifest.json").write_text(json.dumps({"version": "v0"}))
    assert reg.verify_version("v0") == []
    reg.promote("v0", reason="legacy")
    assert reg.champion_version() == "v0"


def test_promote_details_approval_and_rejection_are_audited(tmp_path):
    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    approval = {"by": "alice", "decision": "approved", "at": "2026-11-28T04:00:00Z", "comment": "ok"}
    ptr = reg.promote("v1", reason="gate", approval=approval, run_id="r1")
    assert ptr["approval"] == approval and reg.champion()["approval"] == approval
    entry = reg.record_rejection("v2", user="bob", reason="looks off", approval={"by": "bob", "decision": "rejected"})
    assert reg.champion_version() == "v1"  # a rejection never moves the pointer
    audit = reg.audit()
    assert [(e["action"], e["version"]) for e in audit] == [("promote", "v1"), ("rejected", "v2")]
    assert audit[0]["approval"] == approval and audit[0]["promotion_id"] == ptr["promotion_id"]
    assert audit[1] == entry and audit[1]["user"] == "bob"
    assert {r["version"]: r["ever_promoted"] for r in version_rows(reg)} == {"v1": True, "v2": False}


def test_compare_and_set_refuses_a_changed_champion(tmp_path):
    from ml.errors import RegistryError

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    reg.promote("v1", reason="first", expect_previous=None)
    with pytest.raises(RegistryError, match="the champion changed since it was compared: expected None, found v1"):
        reg.promote("v2", reason="stale decision", expect_previous=None)
    reg.promote("v2", reason="fresh", expect_previous="v1")
    assert reg.champion_version() == "v2"



def test_damaged_pointer_raises_instead_of_no_champion(tmp_path):
    from ml.errors import RegistryDamaged

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    assert reg.champion() is None  # nothing promoted yet: genuinely no champion
    reg.promote("v1", reason="x")
    ptr = Path(reg.pointer_path)
    for damage in ("{", "[]", '{"version": "v9"}'):
        ptr.write_text(damage)
        with pytest.raises(RegistryDamaged, match=r"champion\.json.*turkey models doctor --repair"):
            reg.champion_version()


def test_doctor_reports_healthy_registry_and_cli_json(tmp_path, capsys):
    from ml.cli import main

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    reg.promote("v1", reason="x")
    report = doctor(reg)
    assert report["ok"] and report["findings"] == [] and report["checked"]["champion"] == "v1"
    assert main(["models", "--artifacts", reg.root, "doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"]["versions"] == 2
    (Path(reg.models) / ".v3.tmp-1-2").mkdir()  # a killed register's leftover, too young to remove
    assert main(["models", "--artifacts", reg.root, "doctor", "--repair"]) == 0
    assert (Path(reg.models) / ".v3.tmp-1-2").exists()
    assert remove_orphans(reg, 0) == [str(Path(reg.models) / ".v3.tmp-1-2")]





# ---------------------------------------------------------------- review fixes (H-FIX)
def _decided_but_unfinished(reg, monkeypatch, version):
    """A promotion of ``version`` whose intent was written, then the promoter stopped (disk full)."""
    from ml.errors import EnvironmentFault

    with monkeypatch.context() as m:

        def stop(self, intent):
            raise EnvironmentFault("latest.csv", "disk full", "free space")

        m.setattr(Registry, "_apply", stop)
        with pytest.raises(EnvironmentFault):
            reg.promote(version, reason="interrupted")
    assert (Path(reg.root) / ".promotion-intent.json").is_file()


def test_champion_raises_when_an_unfinished_promotion_names_a_broken_version(tmp_path, monkeypatch):
    from ml.errors import RegistryDamaged

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    reg.promote("v1", reason="first")
    _decided_but_unfinished(reg, monkeypatch, "v2")
    vdir = Path(reg.version_dir("v2"))
    vdir.chmod(0o755)
    (vdir / "model.keras").unlink()
    with pytest.raises(RegistryDamaged, match=r"promotion-intent\.json.*v2.*cannot finish"):
        reg.champion()  # never the broken version as "champion"


def test_champion_reports_the_decided_promotion_while_the_lock_is_busy(tmp_path, monkeypatch):
    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    reg.promote("v1", reason="first")
    _decided_but_unfinished(reg, monkeypatch, "v2")
    with reg.locked():  # another promoter at work: the reader cannot finish it, reports the decision
        assert Registry(reg.root).champion_version() == "v2"
    assert reg.champion_version() == "v2" and not (Path(reg.root) / ".promotion-intent.json").exists()




def test_versions_are_hashed_before_the_lock_and_doctor_reads_the_audit_outside_it(tmp_path, monkeypatch):
    from ml.errors import RegistryBusy

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    held = []

    def lock_free() -> bool:
        try:
            with Registry(reg.root).locked(timeout=0):
                return True
        except RegistryBusy:
            return False

    from ml.registry import doctor as doctor_module

    def spy(owner, name):
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _real=real, _n=name: (held.append((_n, lock_free())), _real(*a))[1])

    spy(Registry, "verify_version")
    spy(doctor_module, "_check_audit")
    spy(doctor_module, "remove_orphans")
    reg.promote("v1", reason="first")
    doctor_module.doctor(reg, repair=True)
    assert ("verify_version", True) in held and ("_check_audit", True) in held and ("remove_orphans", True) in held
    assert all(free for name, free in held if name != "verify_version"), held
    # promote itself hashes before taking the lock (doctor checks versions before it, too)
    assert held[0] == ("verify_version", True)



def test_a_retried_rejection_is_recorded_once(tmp_path):
    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    first = reg.record_rejection("v2", user="rev", reason="no", run_id="manual__1")
    again = reg.record_rejection("v2", user="rev", reason="no", run_id="manual__1")  # the retried HITL task
    assert again["promotion_id"] == first["promotion_id"]
    assert [e["action"] for e in reg.audit()] == ["rejected"]
    reg.record_rejection("v2", user="rev", reason="no", run_id="manual__2")  # another run's decision
    assert len(reg.audit()) == 2




