"""SIGKILL inside the registry at every step of register and promote, then recovery by each route.

Each case kills a real process (a forked child running the registry code, or the ``turkey`` CLI) through
the test-only hook ``TURKEY_FAULT_INJECT`` (``ml.faults``), checks what a reader of the files sees before
any recovery (nothing half-written, the previous champion intact until the promotion was decided), then
recovers (``turkey models doctor --repair``, the same promotion retried, the next promotion, or just a
reader) and checks every registry invariant (``helpers.check_invariants``).
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest

from ml.faults import STEPS
from ml.fsutil import TMP_PREFIX
from ml.registry import INTENT_NAME, POINTER_ACTIONS, Registry
from ml.registry.doctor import remove_orphans
from ml.registry.views import version_rows
from tests.faults.helpers import check_invariants, in_child, raw_state, turkey
from tests.support.candidates import make_candidate, seeded_registry

PROMOTE_STEPS = [s for s in STEPS if s.startswith("promote:")]
REGISTER_STEPS = [s for s in STEPS if s.startswith("register:")]
DECIDED = {s for s in PROMOTE_STEPS if s != "promote:after_lock"}  # the intent exists from here on


def _promote(root, version):
    Registry(root).promote(version, reason="fault test", run_id="run-x")


def _register(root, version, cand):
    Registry(root).register(version, cand, {"run_id": f"run-{version}"})


def _pointer_history(root) -> list[str]:
    return [e["version"] for e in Registry(root).audit() if e["action"] in POINTER_ACTIONS]


def _assert_no_torn_state(root, checks):
    """Before any recovery: every file whole; pointer and latest.csv each the old or the new champion."""
    state = raw_state(root)
    checks(state["pointer"] in ("v1", "v2"), f"pointer names {state['pointer']}")
    checks(state["latest_csv_of"] in ("v1", "v2"), "latest.csv is nobody's submission (half-written?)")
    reg = Registry(root)
    for v in reg.versions():
        checks(reg.verify_version(v) == [], f"{v} damaged")
    return state


@pytest.mark.parametrize("recovery", ["doctor", "retry", "next_promotion", "reader"])
@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_promote_killed_at_each_step_then_recovered(tmp_path, step, recovery, ledger):
    reg = seeded_registry(tmp_path)
    root = reg.base
    before = raw_state(root)
    assert in_child(_promote, root, "v2", fault=step) == -signal.SIGKILL
    ledger.fault(f"SIGKILL at {step}")
    state = _assert_no_torn_state(root, ledger.checks)
    if step not in DECIDED:
        ledger.checks(state == before, "a promotion killed before its intent changed something")
    ledger.checks(state["intent"] == (step in DECIDED), "intent record present iff the promotion was decided")
    # Readers of the API never see pointer and audit disagree: the decided promotion is the champion.
    decided = "v2" if step in DECIDED else "v1"

    if recovery == "doctor":
        r = turkey("models", "--artifacts", root, "doctor", "--repair")
        ledger.checks(r.returncode == 0, f"doctor --repair failed: {r.stdout}{r.stderr}")
        expected, history = decided, ["v1", "v2"] if step in DECIDED else ["v1"]
    elif recovery == "retry":
        _promote(root, "v2")
        expected, history = "v2", ["v1", "v2"]
    elif recovery == "next_promotion":
        _promote(root, "v3")
        expected, history = "v3", ["v1", "v2", "v3"] if step in DECIDED else ["v1", "v3"]
    else:
        ledger.checks(Registry(root).champion_version() == decided, "a reader saw the wrong champion")
        expected, history = decided, ["v1", "v2"] if step in DECIDED else ["v1"]

    pointer = check_invariants(root, ledger.checks)
    ledger.checks(pointer["version"] == expected, f"champion {pointer['version']} != {expected}")
    ledger.checks(_pointer_history(root) == history, f"audit {_pointer_history(root)} != {history}")
    listed = {r["version"]: r["ever_promoted"] for r in version_rows(Registry(root))}
    ledger.checks(all(listed[v] for v in history), f"a version that was champion is not marked: {listed}")


@pytest.mark.parametrize("step", PROMOTE_STEPS)
def test_cli_promote_killed_at_each_step_then_repaired(tmp_path, step, ledger):
    """The operator's `turkey models promote` (a rollback) killed mid-way; `doctor --repair` finishes it."""
    reg = seeded_registry(tmp_path)
    reg.promote("v2", reason="second")
    root = reg.base
    r = turkey("models", "--artifacts", root, "promote", "v1", "--user", "ops", fault=step)
    ledger.fault(f"SIGKILL at {step} (CLI)")
    ledger.checks(r.returncode == -signal.SIGKILL, f"CLI was not killed: {r.returncode} {r.stderr}")
    r = turkey("models", "--artifacts", root, "doctor")
    ledger.checks(r.returncode == (1 if step in DECIDED else 0), f"doctor (check only) said {r.returncode}: {r.stdout}")
    r = turkey("models", "--artifacts", root, "doctor", "--repair")
    ledger.checks(r.returncode == 0, r.stdout + r.stderr)
    pointer = check_invariants(root, ledger.checks)
    ledger.checks(pointer["version"] == ("v1" if step in DECIDED else "v2"), f"champion {pointer['version']}")
    if step in DECIDED:
        last = Registry(root).audit()[-1]
        ledger.checks(last["action"] == "rollback" and last["user"] == "ops", f"audit lost the rollback: {last}")


@pytest.mark.parametrize("step", REGISTER_STEPS)
def test_register_killed_leaves_no_visible_version_and_doctor_removes_the_leftover(tmp_path, step, ledger):
    reg = seeded_registry(tmp_path)
    root = reg.base
    cand = make_candidate(tmp_path / "cands", "v9")
    assert in_child(_register, root, "v9", str(cand), fault=step) == -signal.SIGKILL
    ledger.fault(f"SIGKILL at {step}")
    ledger.checks("v9" not in Registry(root).versions(), "a half-registered version is visible")
    ledger.checks(Registry(root).champion_version() == "v1", "the champion changed")
    r = turkey("models", "--artifacts", root, "doctor", "--orphan-min-age", "0")
    ledger.checks(r.returncode == 1 and "orphan" in r.stdout, f"doctor missed the leftover: {r.stdout}")
    r = turkey("models", "--artifacts", root, "doctor", "--repair", "--orphan-min-age", "0")
    ledger.checks(r.returncode == 0 and "removed" in r.stdout, r.stdout + r.stderr)
    check_invariants(root, ledger.checks)
    # the retried task publishes the version whole
    path, created = Registry(root).register("v9", cand, {"run_id": "run-v9"})
    ledger.checks(created and Registry(root).verify_version("v9") == [], "retried register failed")


def _promote_forever(root, seed):
    rng = random.Random(seed)
    reg = Registry(root)
    while True:
        v = rng.choice(["v1", "v2", "v3", "v4"])
        if rng.random() < 0.3:
            reg.rollback(v, user="chaos")
        else:
            reg.promote(v, reason="chaos", run_id=f"run-{seed}")


def test_promoters_killed_at_random_moments(tmp_path, ledger):
    """SIGKILL by PID at random times (not only at the hook's steps), 40 times, recovering by turns."""
    import multiprocessing as mp
    import os

    reg = seeded_registry(tmp_path, versions=("v1", "v2", "v3", "v4"))
    root = reg.base
    rng = random.Random(20261128)
    ctx = mp.get_context("fork")
    mid_promotion = 0
    for i in range(40):
        p = ctx.Process(target=_promote_forever, args=(root, i))
        p.start()
        time.sleep(rng.uniform(0.005, 0.08))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        # a fault only if the kill landed inside a promotion: its intent or a half-written temporary is left
        # (a kill before the child reached the registry, or between two promotions, injects nothing)
        if _interrupted(Path(root)):
            mid_promotion += 1
            ledger.fault("SIGKILL at a random moment, mid-promotion")
        route = i % 3
        if route == 0:
            Registry(root).recover()
        elif route == 1:
            _promote(root, rng.choice(["v1", "v2", "v3", "v4"]))
        else:
            r = turkey("models", "--artifacts", root, "doctor", "--repair", "--orphan-min-age", "0")
            ledger.checks(r.returncode == 0, r.stdout + r.stderr)
        # a kill inside an atomic write may leave a .tmp- file until doctor/cleanup: allowed, then removed
        check_invariants(root, ledger.checks, orphans_allowed=route != 2)
    remove_orphans(Registry(root), 0)
    check_invariants(root, ledger.checks)
    assert mid_promotion > 0, "no kill landed inside a promotion: the test injected nothing"


def _interrupted(root: Path) -> bool:
    """Whether a killed promoter left an unfinished promotion or a temporary file in the registry."""
    folders = (root, root / "submissions", root / "audit")
    return (root / INTENT_NAME).exists() or any(
        f.name.startswith(TMP_PREFIX) for d in folders if d.is_dir() for f in d.iterdir()
    )


def test_fault_hook_is_off_unless_armed(tmp_path, ledger):
    """Production never has the variable: the hook does nothing (the same code path completes)."""
    reg = seeded_registry(tmp_path)
    assert in_child(_promote, reg.base, "v2") == 0
    pointer = check_invariants(reg.base, ledger.checks)
    ledger.checks(pointer["version"] == "v2", "promotion without a fault did not complete")
    ledger.checks(json.loads((tmp_path / "reg" / "champion.json").read_text())["run_id"] == "run-x", "details lost")
