"""Damaged registry files (truncated pointer, deleted champion model, edited version file, edited or
missing latest.csv/pointer, garbage intent) and unsafe inputs: each is detected with a message naming
the file and the repair, never mistaken for "no champion", and repaired where that is safe."""

from __future__ import annotations

import json
import types
from collections import defaultdict

import pytest

from ml.errors import RegistryDamaged, TurkeyError
from ml.registry import INTENT_NAME, Registry
from tests.faults.helpers import check_invariants, turkey
from tests.support.candidates import seeded_registry


def _truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _writable(path):
    path.chmod(0o644)
    return path


def test_truncated_pointer_names_the_file_and_the_repair_and_promote_repairs_it(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    reg.promote("v2", reason="second")
    _truncate(tmp_path / "reg" / "champion.json")
    ledger.fault("truncated champion.json")
    with pytest.raises(RegistryDamaged, match=r"champion\.json: unreadable .*turkey models doctor --repair"):
        Registry(reg.base).champion_version()
    for args in (["list"], ["show", "champion"], ["doctor"]):
        r = turkey("models", "--artifacts", reg.base, *args)
        ledger.checks(r.returncode == 1, f"{args}: exit {r.returncode}")  # never 2, never a traceback
        out = r.stderr + r.stdout
        ledger.checks("champion.json" in out and "doctor --repair" in out and "Traceback" not in out, out)
    r = turkey("models", "--artifacts", reg.base, "promote", "v3", "--user", "ops")  # the documented repair
    ledger.checks(r.returncode == 0 and "repaired" in r.stdout, r.stdout + r.stderr)
    pointer = check_invariants(reg.base, ledger.checks)
    ledger.checks(pointer["version"] == "v3" and pointer["previous"] == "v2", f"pointer {pointer}")


def test_truncated_pointer_is_restored_by_doctor_from_the_audit(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    reg.promote("v2", reason="second")
    _truncate(tmp_path / "reg" / "champion.json")
    ledger.fault("truncated champion.json")
    r = turkey("models", "--artifacts", reg.base, "doctor", "--repair")
    ledger.checks(r.returncode == 0 and "restored to the last audited champion v2" in r.stdout, r.stdout)
    pointer = check_invariants(reg.base, ledger.checks)
    ledger.checks(pointer["version"] == "v2" and Registry(reg.base).audit()[-1]["action"] == "repair", "not audited")


def test_deleted_pointer_is_restored_by_doctor(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    (tmp_path / "reg" / "champion.json").unlink()
    ledger.fault("deleted champion.json")
    r = turkey("models", "--artifacts", reg.base, "doctor")
    ledger.checks(r.returncode == 1 and "missing, but the audit log names v1" in r.stdout, r.stdout)
    turkey("models", "--artifacts", reg.base, "doctor", "--repair", check=True)
    ledger.checks(check_invariants(reg.base, ledger.checks)["version"] == "v1", "not restored")


def test_deleted_champion_model_is_never_no_champion(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    (tmp_path / "reg" / "models" / "v1" / "model.keras").unlink()
    ledger.fault("deleted champion model.keras")
    with pytest.raises(RegistryDamaged, match=r"names version 'v1', which is incomplete \(missing model\.keras\)"):
        Registry(reg.base).champion()
    r = turkey("models", "--artifacts", reg.base, "doctor", "--repair")
    ledger.checks(r.returncode == 1 and "turkey models promote VERSION" in r.stdout, r.stdout)  # not repairable
    r = turkey("models", "--artifacts", reg.base, "promote", "v1")
    ledger.checks(r.returncode == 1 and "v1 is damaged" in r.stderr, r.stderr)  # refuses the broken version
    turkey("models", "--artifacts", reg.base, "promote", "v2", check=True)
    pointer = check_invariants(reg.base, ledger.checks, damaged={"v1"})
    ledger.checks(pointer["version"] == "v2" and "repaired_pointer" in pointer, f"{pointer}")


def test_edited_version_file_is_detected_and_cannot_be_promoted(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    metrics = _writable(tmp_path / "reg" / "models" / "v2" / "metrics.json")
    metrics.write_text(json.dumps({"val_accuracy": 0.99, "val_auc": 0.999}))  # someone "improved" the figures
    ledger.fault("edited version file")
    ledger.checks(reg.verify_version("v2") == ["metrics.json was changed after register (sha256 differs from the "
                                                "manifest)"], str(reg.verify_version("v2")))
    r = turkey("models", "--artifacts", reg.base, "doctor", "--repair")
    ledger.checks(r.returncode == 1 and "models/v2: metrics.json was changed" in r.stdout, r.stdout)
    with pytest.raises(TurkeyError, match="v2 is damaged"):
        reg.promote("v2", reason="should be refused")
    check_invariants(reg.base, ledger.checks, damaged={"v2"})
    ledger.checks(reg.champion_version() == "v1", "champion changed")


def test_edited_latest_csv_is_recopied_and_audited(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    (tmp_path / "reg" / "submissions" / "latest.csv").write_text("vid_id,is_turkey\nx,1\n")
    ledger.fault("edited latest.csv")
    r = turkey("models", "--artifacts", reg.base, "doctor")
    ledger.checks(r.returncode == 1 and "latest.csv: differs from the champion v1" in r.stdout, r.stdout)
    turkey("models", "--artifacts", reg.base, "doctor", "--repair", check=True)
    check_invariants(reg.base, ledger.checks)
    ledger.checks([e["action"] for e in reg.audit()] == ["promote", "repair"], "repair not audited")


def test_garbage_intent_is_refused_clearly_and_discarded_by_doctor(tmp_path, ledger):
    reg = seeded_registry(tmp_path)
    (tmp_path / "reg" / INTENT_NAME).write_text("{garbage")
    ledger.fault("garbage promotion intent")
    with pytest.raises(RegistryDamaged, match=r"promotion-intent\.json: unreadable promotion intent"):
        reg.promote("v2", reason="x")
    turkey("models", "--artifacts", reg.base, "doctor", "--repair", check=True)
    reg.promote("v2", reason="x")
    ledger.checks(check_invariants(reg.base, ledger.checks)["version"] == "v2", "promote after repair failed")


def _train_ctx(force):
    params = defaultdict(lambda: None, {"force_promote": force, "recipe": "default", "seed": 42})
    return {"params": params, "dag_run": types.SimpleNamespace(run_id="manual__fault", dag_id="turkey_training")}


def test_train_task_fails_on_a_broken_champion_unless_forced(tmp_path, monkeypatch, ledger):
    """The gate never mistakes a broken champion for "no champion" (issue: promoted with no comparison)."""
    from airflow.sdk.exceptions import AirflowFailException

    from turkey_airflow import tasks

    seeded_registry(tmp_path)
    monkeypatch.setenv("TURKEY_ARTIFACTS_ROOT", str(tmp_path / "reg"))
    monkeypatch.delenv("TURKEY_REGISTRY_URL", raising=False)
    (tmp_path / "reg" / "models" / "v1" / "model.keras").unlink()
    ledger.fault("deleted champion model.keras (train task)")
    calls = []
    monkeypatch.setattr("ml.pipeline.train_step", lambda *a, **k: calls.append(a[4]) or {"candidate_dir": "c"})
    prepared = {"split_npz": "s.npz", "test_padded_npz": "t.npz"}
    monkeypatch.setattr(tasks, "get_current_context", lambda: _train_ctx(False))
    with pytest.raises(AirflowFailException, match=r"champion\.json: names version 'v1'.*doctor --repair"):
        tasks.train(prepared)
    ledger.checks(not calls, "trained although the champion is broken")
    monkeypatch.setattr(tasks, "get_current_context", lambda: _train_ctx(True))
    out = tasks.train(prepared)
    ledger.checks(out["champion_version"] is None and "missing model.keras" in out["champion_problem"], str(out))
    ledger.checks(calls == [{}], f"forced run compared with a broken champion: {calls}")
    # ...and the version's manifest records why there was no comparison (not "no champion yet")
    from datetime import UTC, datetime

    from tests.support.candidates import make_candidate

    ctx = _train_ctx(True)
    ctx["params"].update(auc_tolerance=0.02, train_file="landing/train.json", test_file="landing/test.json",
                         min_gate_records=100, val_fraction=0.25)
    ctx["dag_run"].start_date = ctx["dag_run"].run_after = datetime(2026, 11, 28, 3, tzinfo=UTC)
    monkeypatch.setattr(tasks, "get_current_context", lambda: ctx)
    registered = tasks.register(
        {"train_sha256": "a" * 64, "test_sha256": "b" * 64, "report_html": {}},
        {"candidate_dir": str(make_candidate(tmp_path, "forced")), "device": "CPU", "champion_version": None,
         "champion_problem": out["champion_problem"]},
        {"val_accuracy": 0.9, "val_auc": 0.95},
    )
    gate = Registry(tmp_path / "reg").manifest(registered["version"])["gate"]
    ledger.checks(gate["promote"] and gate["reason"].startswith("forced by operator; the champion could not be "
                                                                "compared: registry damaged"), str(gate))
    ledger.checks("missing model.keras" in gate["champion_problem"], str(gate))


def test_unsafe_names_and_paths_are_refused_with_a_message(tmp_path, ledger):
    from ml.settings import resolve_input, safe_name

    reg = seeded_registry(tmp_path)
    for bad in ("..", ".", ""):
        r = turkey("models", "--artifacts", reg.base, "promote", bad)
        ledger.fault("unsafe version name")
        ledger.checks(r.returncode == 1 and "not a usable name" in r.stderr, f"{bad!r}: {r.returncode} {r.stderr}")
    for bad in ("landing/../../etc/passwd", "../x.json", "landing/a\x00b.json", "a/../landing/train.json"):
        with pytest.raises(TurkeyError, match=r"NUL byte|'\.\.' component|escapes"):
            resolve_input(bad, tmp_path)
        ledger.fault("unsafe input path")
    with pytest.raises(TurkeyError, match="NUL byte"):
        safe_name("v1\x00")
    ledger.checks(safe_name("manual__2026-11-28T03:00:00+00:00") == "manual__2026-11-28T03_00_00_00_00", "run ids")
    check_invariants(reg.base, ledger.checks)


def test_test_file_given_as_train_is_refused_before_anything_moves(tmp_path, ledger):
    from ml.demo import generate
    from ml.errors import DataError
    from ml.pipeline import validate_inputs

    landing = tmp_path / "data" / "landing"
    generate(landing, train_size=120, test_size=60, seed=3)
    before = sorted(p.name for p in landing.iterdir())
    with pytest.raises(DataError, match=r"label\.required.*looks like a test file.*not moved"):
        validate_inputs(landing / "test.json", None, tmp_path / "work", min_records=10)
    ledger.fault("test file given as train input")
    with pytest.raises(TurkeyError, match="same file"):
        validate_inputs(landing / "test.json", landing / "test.json", tmp_path / "work", min_records=10)
    ledger.fault("same file as train and test")
    ledger.checks(sorted(p.name for p in landing.iterdir()) == before, "a landing file was moved")
    ledger.checks(not (tmp_path / "data" / "rejected").exists(), "something went to rejected/")
