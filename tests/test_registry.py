import json
import multiprocessing as mp
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml.errors import GateError, TurkeyError
from ml.pipeline import accuracy_gate, champion_gate
from ml.registry import VERSION_FILES, Registry, make_version
from tests.candidates import make_candidate


def test_versions_are_deterministic_per_run_and_sort_by_time():
    t1, t2 = datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 8, 3, tzinfo=UTC)
    assert make_version(t1, "d", "r1") == make_version(t1, "d", "r1")
    assert make_version(t1, "d", "r1") != make_version(t1, "d", "r2")
    assert sorted([make_version(t2, "d", "a"), make_version(t1, "d", "z")])[0] == make_version(t1, "d", "z")


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
    assert reg.describe("champion")["version"] == "v1"
    with pytest.raises(TurkeyError):
        reg.rollback("nope")


def test_gates():
    assert accuracy_gate({"val_accuracy": 0.9}, 0.85)["passed"]
    with pytest.raises(GateError, match=r"0\.8000.*0\.8500"):
        accuracy_gate({"val_accuracy": 0.8}, 0.85)
    cmp = {
        "method": "delong",
        "confidence": 0.95,
        "n": 300,
        "challenger_auc": 0.90,
        "champion_auc": 0.93,
        "difference": -0.03,
        "ci_low": -0.04,
        "ci_high": -0.02,
    }  # more cases: tests/test_gate.py
    m = {"val_auc": 0.90, "champion_comparison": cmp}
    assert champion_gate({"val_auc": 0.9}, None, 0.01)["promote"]
    assert not champion_gate(m, "v1", 0.01)["promote"]
    assert champion_gate(m, "v1", 0.05)["promote"]
    forced = champion_gate(m, "v1", 0.01, force_promote=True)
    assert forced["promote"] and "forced" in forced["reason"]


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
    assert reg.describe("champion")["model"].startswith("memory://")


# ---------------------------------------------------------------- transaction, damage, doctor (issue 10)
def _reg_with(tmp_path, versions=("v1", "v2")):
    reg = Registry(tmp_path / "art")
    for i, v in enumerate(versions):
        reg.register(v, make_candidate(tmp_path, v, rows=3 + i), {"run_id": f"r-{v}"})
    return reg


def test_manifest_records_every_file_hash_and_legacy_versions_stay_valid(tmp_path):
    from ml.registry import sha256_file

    reg = _reg_with(tmp_path, ("v1",))
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
    reg = _reg_with(tmp_path)
    approval = {"by": "alice", "decision": "approved", "at": "2026-11-28T04:00:00Z", "comment": "ok"}
    ptr = reg.promote("v1", reason="gate", approval=approval, run_id="r1")
    assert ptr["approval"] == approval and reg.champion()["approval"] == approval
    entry = reg.record_rejection("v2", user="bob", reason="looks off", approval={"by": "bob", "decision": "rejected"})
    assert reg.champion_version() == "v1"  # a rejection never moves the pointer
    audit = reg.audit()
    assert [(e["action"], e["version"]) for e in audit] == [("promote", "v1"), ("rejected", "v2")]
    assert audit[0]["approval"] == approval and audit[0]["promotion_id"] == ptr["promotion_id"]
    assert audit[1] == entry and audit[1]["user"] == "bob"
    assert {r["version"]: r["ever_promoted"] for r in reg.list()} == {"v1": True, "v2": False}


def test_compare_and_set_refuses_a_changed_champion(tmp_path):
    from ml.errors import RegistryError

    reg = _reg_with(tmp_path)
    reg.promote("v1", reason="first", expect_previous=None)
    with pytest.raises(RegistryError, match="the champion changed since it was compared: expected None, found v1"):
        reg.promote("v2", reason="stale decision", expect_previous=None)
    reg.promote("v2", reason="fresh", expect_previous="v1")
    assert reg.champion_version() == "v2"


def test_a_busy_lock_times_out_with_a_clear_error(tmp_path, monkeypatch):
    import fcntl

    from ml.errors import RegistryError

    reg = _reg_with(tmp_path)
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.2")
    with open(Path(reg.root) / ".registry.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another promoter holds it (a separate open file description)
        with pytest.raises(RegistryError, match=r"registry is busy: .*\.registry\.lock"):
            reg.promote("v1", reason="x")
    reg.promote("v1", reason="x")  # released: goes through
    assert reg.champion_version() == "v1"


def test_object_store_lock_is_exclusive_and_a_stale_one_is_broken(tmp_path, monkeypatch):
    import fsspec

    from ml.errors import RegistryError

    root = f"memory://lock-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    reg.register("v1", make_candidate(tmp_path, "c1", rows=3), {})
    fs, base = fsspec.core.url_to_fs(root)
    fs.pipe_file(f"{base}/.registry.lock", json.dumps({"token": "other", "at": __import__("time").time()}).encode())
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.2")
    with pytest.raises(RegistryError, match="registry is busy"):
        reg.promote("v1", reason="x")
    fs.pipe_file(f"{base}/.registry.lock", json.dumps({"token": "dead", "at": 0}).encode())  # a dead holder's
    reg.promote("v1", reason="x")
    assert reg.champion_version() == "v1" and not fs.exists(f"{base}/.registry.lock")


def test_damaged_pointer_raises_instead_of_no_champion(tmp_path):
    from ml.errors import RegistryDamaged

    reg = _reg_with(tmp_path)
    assert reg.champion() is None  # nothing promoted yet: genuinely no champion
    reg.promote("v1", reason="x")
    ptr = Path(reg.pointer_path)
    for damage in ("{", "[]", '{"version": "v9"}'):
        ptr.write_text(damage)
        with pytest.raises(RegistryDamaged, match=r"champion\.json.*turkey models doctor --repair"):
            reg.champion_version()


def test_doctor_reports_healthy_registry_and_cli_json(tmp_path, capsys):
    from ml.cli import main

    reg = _reg_with(tmp_path)
    reg.promote("v1", reason="x")
    report = reg.doctor()
    assert report["ok"] and report["findings"] == [] and report["checked"]["champion"] == "v1"
    assert main(["models", "--artifacts", str(tmp_path / "art"), "doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"]["versions"] == 2
    (Path(reg.models) / ".v3.tmp-1-2").mkdir()  # a killed register's leftover, too young to remove
    assert main(["models", "--artifacts", str(tmp_path / "art"), "doctor", "--repair"]) == 0
    assert (Path(reg.models) / ".v3.tmp-1-2").exists()
    assert reg.remove_orphans(0) == [str(Path(reg.models) / ".v3.tmp-1-2")]


def test_environment_errors_become_one_line_faults_and_leave_nothing(tmp_path):
    import errno

    from ml.errors import EnvironmentFault
    from ml.fsutil import atomic_output

    target = tmp_path / "out.bin"
    for code, words in (
        (errno.ENOSPC, "disk full"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
    ):
        with (
            pytest.raises(EnvironmentFault, match=f"^{words} while writing {target}: ") as exc,
            atomic_output(target) as tmp,
        ):
            tmp.write_bytes(b"half")
            raise OSError(code, os.strerror(code))
        assert "\n" not in str(exc.value)
    with pytest.raises(OSError, match="other"), atomic_output(target) as tmp:  # anything else stays itself
        raise OSError(errno.EIO, "other")
    assert list(tmp_path.iterdir()) == []


def test_retention_keeps_the_newest_runs_and_drops_old_ones(tmp_path):
    import time

    from ml.retention import prune_runs, remove_temp_files

    runs = tmp_path / "runs"
    now = time.time()
    for i in range(6):
        d = runs / f"run{i}" / "validation"
        d.mkdir(parents=True)
        (d / "report.html").write_text("x" * 100)
        os.utime(runs / f"run{i}", (now - (6 - i) * 86400, now - (6 - i) * 86400))  # run5 newest
    out = prune_runs(runs, keep=3, max_age_days=0, protect=[runs / "run0"], now=now)
    assert sorted(Path(p).name for p in out["removed"]) == ["run1", "run2"] and out["freed_bytes"] == 200
    out = prune_runs(runs, keep=10, max_age_days=2.5, protect=[], now=now)
    assert sorted(Path(p).name for p in out["removed"]) == ["run0", "run3"]
    assert sorted(p.name for p in runs.iterdir()) == ["run4", "run5"]
    old = runs / "run4" / ".tmp-1-2-x.npz"
    old.write_text("half")
    os.utime(old, (now - 7200, now - 7200))
    young = runs / "run5" / ".tmp-3-4-y.npz"
    young.write_text("writing")
    assert remove_temp_files(runs, 3600, now=now) == [str(old)] and young.exists()


def test_tasks_and_cli_turn_a_raw_environment_oserror_into_one_line(capsys, monkeypatch):
    """A disk-full error raised inside a library we do not wrap (e.g. GX writing Data Docs)."""
    import errno

    from airflow.sdk.exceptions import AirflowFailException

    from ml import cli
    from turkey_airflow.tasks import _fail_cleanly

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "/x/data-docs/index.html")

    with pytest.raises(AirflowFailException, match="^disk full while writing /x/data-docs/index.html: free space"):
        _fail_cleanly(full)()
    with pytest.raises(FileNotFoundError):  # not an environment fault: unchanged
        _fail_cleanly(lambda: Path("/nonexistent/x").read_text())()
    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["demo-data"].set_defaults(func=lambda a: full())
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main(["demo-data", "--out", "/tmp/unused"]) == 1
    assert (
        capsys.readouterr().err == "error: disk full while writing /x/data-docs/index.html: free space on that "
        "filesystem, then clear the task\n"
    )


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

    reg = _reg_with(tmp_path)
    reg.promote("v1", reason="first")
    _decided_but_unfinished(reg, monkeypatch, "v2")
    vdir = Path(reg.version_dir("v2"))
    vdir.chmod(0o755)
    (vdir / "model.keras").unlink()
    with pytest.raises(RegistryDamaged, match=r"promotion-intent\.json.*v2.*cannot finish"):
        reg.champion()  # never the broken version as "champion"


def test_champion_reports_the_decided_promotion_while_the_lock_is_busy(tmp_path, monkeypatch):
    reg = _reg_with(tmp_path)
    reg.promote("v1", reason="first")
    _decided_but_unfinished(reg, monkeypatch, "v2")
    with reg._locked():  # another promoter at work: the reader cannot finish it, reports the decision
        assert Registry(reg.root).champion_version() == "v2"
    assert reg.champion_version() == "v2" and not (Path(reg.root) / ".promotion-intent.json").exists()


def test_a_busy_lock_is_its_own_error_that_tasks_let_airflow_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from ml.errors import RegistryBusy, RegistryError
    from turkey_airflow.tasks import _fail_cleanly

    reg = _reg_with(tmp_path)
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.1")
    with reg._locked():
        with pytest.raises(RegistryBusy, match="registry is busy"):
            Registry(reg.root).promote("v1", reason="x")
        with pytest.raises(RegistryBusy):  # not AirflowFailException: the task's retries apply
            _fail_cleanly(lambda: Registry(reg.root).promote("v1", reason="x"))()

    def refused():
        raise RegistryError("the champion changed")

    with pytest.raises(AirflowFailException):  # every other registry refusal still fails at once
        _fail_cleanly(refused)()


def test_versions_are_hashed_before_the_lock_and_doctor_reads_the_audit_outside_it(tmp_path, monkeypatch):
    from ml.errors import RegistryBusy

    reg = _reg_with(tmp_path)
    held = []

    def lock_free() -> bool:
        try:
            with Registry(reg.root)._locked(timeout=0):
                return True
        except RegistryBusy:
            return False

    for name in ("verify_version", "_doctor_audit", "remove_orphans"):
        real = getattr(Registry, name)
        monkeypatch.setattr(
            Registry, name, lambda self, *a, _real=real, _n=name: (held.append((_n, lock_free())), _real(self, *a))[1]
        )
    reg.promote("v1", reason="first")
    reg.doctor(repair=True)
    assert ("verify_version", True) in held and ("_doctor_audit", True) in held and ("remove_orphans", True) in held
    assert all(free for name, free in held if name != "verify_version"), held
    # promote itself hashes before taking the lock (doctor checks versions before it, too)
    assert held[0] == ("verify_version", True)


def test_object_store_lock_release_leaves_another_holders_lock(tmp_path):
    import fsspec

    root = f"memory://lock-release-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    fs, base = fsspec.core.url_to_fs(root)
    lock = f"{base}/.registry.lock"
    with reg._locked():
        # our lock was broken as stale meanwhile, and the next promoter took it
        fs.pipe_file(lock, json.dumps({"token": "next-holder", "at": __import__("time").time()}).encode())
    assert json.loads(fs.cat_file(lock))["token"] == "next-holder"  # not deleted by the old holder
    fs.rm_file(lock)
    with reg._locked():
        pass
    assert not fs.exists(lock)  # our own lock is released


def test_object_store_stale_break_spares_a_lock_taken_meanwhile(tmp_path, monkeypatch):
    import fsspec

    from ml.registry.lock import ObjectLock

    root = f"memory://lock-stale-{os.getpid()}-{tmp_path.name}"
    fs, base = fsspec.core.url_to_fs(root)
    lock = f"{base}/.registry.lock"
    fs.pipe_file(lock, json.dumps({"token": "dead", "at": 0}).encode())
    waiter = ObjectLock(fs, lock, lock, timeout=0.3, stale_after=600)
    real_holder = waiter._holder
    seen = []

    def holder_then_replaced():  # between the stale check and the delete, another waiter broke and re-took it
        body = real_holder()
        seen.append(body.get("token"))
        if len(seen) == 1:
            fs.pipe_file(lock, json.dumps({"token": "fresh", "at": __import__("time").time()}).encode())
        return body if len(seen) == 1 else real_holder()

    monkeypatch.setattr(waiter, "_holder", holder_then_replaced)
    from ml.errors import RegistryBusy

    with pytest.raises(RegistryBusy), waiter:
        pass
    assert json.loads(fs.cat_file(lock))["token"] == "fresh"


def test_a_retried_rejection_is_recorded_once(tmp_path):
    reg = _reg_with(tmp_path)
    first = reg.record_rejection("v2", user="rev", reason="no", run_id="manual__1")
    again = reg.record_rejection("v2", user="rev", reason="no", run_id="manual__1")  # the retried HITL task
    assert again["promotion_id"] == first["promotion_id"]
    assert [e["action"] for e in reg.audit()] == ["rejected"]
    reg.record_rejection("v2", user="rev", reason="no", run_id="manual__2")  # another run's decision
    assert len(reg.audit()) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [("TURKEY_KEEP_REPORTS", "ten"), ("TURKEY_REPORT_MAX_AGE_DAYS", "30d"), ("TURKEY_KEEP_REPORTS", "-3")],
)
def test_a_bad_retention_setting_is_one_line_naming_the_variable(tmp_path, monkeypatch, name, value):
    from airflow.sdk.exceptions import AirflowFailException

    from ml.config import keep_reports, report_max_age_days
    from turkey_airflow import tasks

    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "art"))
    monkeypatch.setenv(name, value)
    with pytest.raises(TurkeyError, match=rf"^{name}='{value}' is not a") as exc:
        keep_reports() if name == "TURKEY_KEEP_REPORTS" else report_max_age_days()
    assert "\n" not in str(exc.value)
    monkeypatch.setattr(tasks, "get_current_context", lambda: {"dag_run": type("R", (), {"run_id": "r"})()})
    with pytest.raises(AirflowFailException, match=name):  # the cleanup task fails at once, no retry loop
        tasks.cleanup()


def test_retention_settings_default_when_unset(monkeypatch):
    from ml.config import keep_reports, report_max_age_days

    monkeypatch.delenv("TURKEY_KEEP_REPORTS", raising=False)
    monkeypatch.setenv("TURKEY_REPORT_MAX_AGE_DAYS", "")
    assert keep_reports() == 20 and report_max_age_days() == 30.0
