"""Environmental faults on real filesystems: a small tmpfs filled up (disk full) or remounted read-only,
during register, promote, saving a trained model and quarantining a rejected input. Needs root (it
mounts tmpfs); skipped with that reason otherwise. Expected: one clear line (``EnvironmentFault``, CLI
exit 1), nothing half-written, the previous champion intact, and recovery once space is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ml.errors import DataError, EnvironmentFault
from ml.registry import Registry
from tests.faults.helpers import check_invariants, fill, raw_state, remount, tmpfs, turkey
from tests.support import REPO
from tests.support.candidates import make_candidate, seeded_registry


def _big_candidate(parent, tag, model_bytes=600_000):
    d = make_candidate(parent, tag, rows=200)
    (d / "model.keras").write_bytes(os.urandom(model_bytes))
    return d


def test_register_on_a_full_disk_fails_cleanly_and_succeeds_once_space_is_back(tmp_path, ledger):
    with tmpfs(tmp_path / "fs", "2m") as fs:
        reg = seeded_registry(fs)  # the registry lives on the small filesystem
        cand = _big_candidate(tmp_path, "v9")
        filler = fill(fs, leave_bytes=200_000)
        with pytest.raises(EnvironmentFault, match=r"^disk full while writing .*models/v9: free space") as exc:
            reg.register("v9", cand, {"run_id": "r9"})
        ledger.fault("disk full during register")
        ledger.checks("\n" not in str(exc.value), "message is not one line")
        ledger.checks("v9" not in reg.versions(), "a partial version is visible")
        check_invariants(reg.base, ledger.checks)  # incl. no temporary folder left
        ledger.checks(reg.champion_version() == "v1", "previous champion not intact")
        filler.unlink()
        _, created = reg.register("v9", cand, {"run_id": "r9"})
        ledger.checks(created and reg.verify_version("v9") == [], "register after freeing space failed")


@pytest.mark.parametrize("leave_kib", [0, 4, 8, 12])  # fails at: intent, <v>.csv, latest.csv; none
def test_promote_on_a_full_disk_keeps_or_decides_then_completes_on_retry(tmp_path, leave_kib, ledger):
    """Space runs out at a different step of the promotion for each amount left free."""
    with tmpfs(tmp_path / "fs", "2m") as fs:
        reg = seeded_registry(fs)
        reg.register("v9", _big_candidate(tmp_path, "v9", model_bytes=10_000), {})
        # make the new submission bigger than what is left, so the copies are what fails
        filler = fill(fs, leave_bytes=leave_kib * 1024)
        try:
            reg.promote("v9", reason="disk full test")
            failed = False
        except EnvironmentFault as exc:
            failed = True
            ledger.checks(str(exc).startswith("disk full while writing"), f"unclear message: {exc}")
        ledger.fault("disk full during promote")
        state = raw_state(reg.base)
        ledger.checks(state["pointer"] in ("v1", "v9") and state["latest_csv_of"] in ("v1", "v9"), f"torn: {state}")
        if failed and not state["intent"]:
            ledger.checks(state["pointer"] == "v1" and state["latest_csv_of"] == "v1", "undecided but changed")
        filler.unlink()
        reg.promote("v9", reason="retry after freeing space")  # the cleared task
        pointer = check_invariants(reg.base, ledger.checks)
        ledger.checks(pointer["version"] == "v9", "retry did not complete the promotion")
        history = [e["version"] for e in reg.audit()]
        ledger.checks(history == ["v1", "v9"], f"audit {history}")


def test_cli_on_full_and_read_only_registry_prints_one_line_exit_1(tmp_path, ledger):
    with tmpfs(tmp_path / "fs", "2m") as fs:
        reg = seeded_registry(fs)
        filler = fill(fs, leave_bytes=0)
        r = turkey("models", "--artifacts", str(reg.base), "promote", "v2")
        ledger.fault("disk full during CLI promote")
        ledger.checks(r.returncode == 1 and r.stderr.startswith("error: disk full while writing"), r.stderr)
        ledger.checks(r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, f"not one line: {r.stderr!r}")
        filler.unlink()
        remount(fs, "ro")
        try:
            r = turkey("models", "--artifacts", str(reg.base), "promote", "v2")
            ledger.fault("read-only registry during CLI promote")
            ledger.checks(r.returncode == 1 and "read-only file system" in r.stderr, r.stderr)
            ledger.checks(r.stderr.count("\n") == 1, f"not one line: {r.stderr!r}")
            r = turkey("models", "--artifacts", str(reg.base), "show", "champion")  # readers still work
            ledger.checks(r.returncode == 0 and "version: v1" in r.stdout, r.stdout + r.stderr)
        finally:
            remount(fs, "rw")
        check_invariants(reg.base, ledger.checks)


SAVE_SCRIPT = textwrap.dedent("""
    import json, sys
    from ml.errors import EnvironmentFault
    from ml.model import build_model
    from ml.train import save_model
    from tests.faults.helpers import fill
    from pathlib import Path
    out = Path(sys.argv[1])
    model = build_model()
    filler = fill(out, leave_bytes=256 * 1024)   # less than the ~2.4 MB model
    try:
        save_model(model, out / "candidate" / "model.keras")
        print(json.dumps({"raised": None}))
    except EnvironmentFault as exc:
        print(json.dumps({"raised": "EnvironmentFault", "message": str(exc)}))
    except Exception as exc:
        print(json.dumps({"raised": type(exc).__name__, "message": str(exc)[:300]}))
    filler.unlink()
    save_model(model, out / "candidate" / "model.keras")   # works once space is back
    print(json.dumps({"saved": (out / "candidate" / "model.keras").stat().st_size}))
""")


def test_saving_the_trained_model_on_a_full_disk(tmp_path, ledger):
    """The real save path (ml.train.save_model, Keras writing model.keras) on a full disk."""
    with tmpfs(tmp_path / "fs", "8m") as fs:
        (fs / "candidate").mkdir()
        r = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(fs)], capture_output=True, text=True,
                           cwd=REPO, timeout=300)
        ledger.fault("disk full while saving the model")
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        ledger.checks(r.returncode == 0 and len(lines) == 2, r.stdout + r.stderr[-2000:])
        first, second = lines
        ledger.checks(first["raised"] == "EnvironmentFault" and first["message"].startswith("disk full"), str(first))
        ledger.checks(second["saved"] > 0, "saving after freeing space failed")
        leftovers = [p.name for p in (fs / "candidate").iterdir() if p.name != "model.keras"]
        ledger.checks(not leftovers, f"half-written files left: {leftovers}")


def _bad_train(path):
    rec = {"vid_id": "a", "start_time_seconds_youtube_clip": 0, "end_time_seconds_youtube_clip": 10,
           "audio_embedding": [[1] * 128], "is_turkey": 1}
    path.write_text(json.dumps([rec, dict(rec)]))  # duplicate vid_id (and too few records)


def test_quarantine_on_a_read_only_landing_leaves_the_file_and_no_copy(tmp_path, ledger):
    from ml.pipeline import validate_inputs

    data = tmp_path / "data"
    with tmpfs(data / "landing", "1m") as landing:
        _bad_train(landing / "train.json")
        original = (landing / "train.json").read_bytes()
        remount(landing, "ro")
        try:
            with pytest.raises(DataError) as exc:
                validate_inputs(landing / "train.json", None, tmp_path / "work", min_records=1)
            ledger.fault("read-only landing during quarantine")
            msg = str(exc.value)
            ledger.checks("rule 'vid_id.unique' broken" in msg and "left in place" in msg
                          and "read-only file system" in msg, msg)
            ledger.checks((landing / "train.json").read_bytes() == original, "the original changed")
            rejected = data / "rejected"
            ledger.checks(not rejected.exists() or not any(rejected.iterdir()), "a copy was left in rejected/")
        finally:
            remount(landing, "rw")


def test_quarantine_across_filesystems_moves_exactly_one_copy(tmp_path, ledger):
    from ml.pipeline import validate_inputs

    data = tmp_path / "data"
    with tmpfs(data / "landing", "1m") as landing:  # rejected/ is on another filesystem
        _bad_train(landing / "train.json")
        original = (landing / "train.json").read_bytes()
        with pytest.raises(DataError, match="vid_id.unique"):
            validate_inputs(landing / "train.json", None, tmp_path / "work", min_records=1)
        ledger.fault("quarantine across filesystems")
        moved = [p for p in (data / "rejected").iterdir() if p.is_file()]
        ledger.checks(not (landing / "train.json").exists(), "original still in landing/")
        ledger.checks(len(moved) == 1 and moved[0].read_bytes() == original, f"rejected/ holds {moved}")
        ledger.checks(not [p for p in (data / "rejected").iterdir() if ".tmp-" in p.name], "temporary copy left")


def test_registry_reads_survive_a_read_only_mount_with_an_unfinished_promotion(tmp_path, ledger):
    """A reader without write access reports the decided champion instead of failing or lying."""
    from tests.faults.helpers import in_child

    with tmpfs(tmp_path / "fs", "2m") as fs:
        reg = seeded_registry(fs)
        code = in_child(lambda: Registry(reg.base).promote("v2", reason="x"), fault="promote:after_latest_csv")
        ledger.checks(code == -9, f"exit {code}")
        ledger.fault("SIGKILL at promote:after_latest_csv, then read-only")
        remount(fs, "ro")
        try:
            ledger.checks(Registry(reg.base).champion_version() == "v2", "reader did not see the decided champion")
        finally:
            remount(fs, "rw")
        Registry(reg.base).recover()
        check_invariants(reg.base, ledger.checks)
