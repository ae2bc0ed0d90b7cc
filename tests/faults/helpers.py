"""Shared pieces of the fault-injection suite: seeded registries (of :func:`tests.support.candidates.make_candidate`
folders, re-exported here), the registry invariants, process and filesystem helpers. Nothing here trains a
model: a version is a folder of small distinct files."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from ml.faults import ENV as FAULT_ENV
from ml.registry import INTENT_NAME, POINTER_ACTIONS, Registry

TURKEY = str(Path(sys.executable).with_name("turkey"))


class Checks:
    """Counts invariant checks; each failed check raises AssertionError with its reason."""

    def __init__(self):
        self.n = 0

    def __call__(self, condition, message: str) -> None:
        self.n += 1
        assert condition, message


def raw_state(root: Path) -> dict:
    """What a reader of the files (not of the API) sees: pointer version and whose submission latest.csv is."""
    root = Path(root)
    ptr = root / "champion.json"
    latest = root / "submissions" / "latest.csv"
    pointer = json.loads(ptr.read_text()) if ptr.exists() else None
    owner = None
    if latest.exists():
        text = latest.read_bytes()
        for v in os.listdir(root / "models"):
            sub = root / "models" / v / "submission.csv"
            if not v.startswith(".") and sub.exists() and sub.read_bytes() == text:
                owner = v
    return {"pointer": pointer["version"] if pointer else None, "latest_csv_of": owner,
            "intent": (root / INTENT_NAME).exists()}


def check_invariants(root: Path, checks: Checks, orphans_allowed: bool = False, damaged=()) -> dict:
    """The registry's published state is consistent (call after recovery). Returns the pointer (or None).

    - no unfinished promotion; every published version matches its manifest hashes (no partial version);
    - champion.json version == whose submission latest.csv (and submissions/<v>.csv) hold == the last
      pointer-changing audit entry's version, with the same promotion id;
    - audit entries unique (each pointer change recorded exactly once) and chained (previous = prior version);
    - no temporary leftovers (unless ``orphans_allowed``).

    ``damaged``: versions a test damaged on purpose (not checked against their hashes).
    """
    root = Path(root)
    reg = Registry(root)
    checks(not (root / INTENT_NAME).exists(), "an unfinished promotion is left behind")
    for v in set(reg.versions()) - set(damaged):
        checks(reg.verify_version(v) == [], f"version {v} is not intact: {reg.verify_version(v)}")
    if not orphans_allowed:
        leftovers = [p.name for d in (root, root / "models", root / "submissions", root / "audit") if d.is_dir()
                     for p in d.iterdir() if ".tmp-" in p.name]
        checks(not leftovers, f"temporary leftovers: {leftovers}")
    entries = [json.loads(p.read_text()) for p in sorted((root / "audit").glob("[!.]*.json"))] \
        if (root / "audit").is_dir() else []
    ids = [e.get("promotion_id") for e in entries]
    checks(len(ids) == len(set(ids)), f"an audit entry is duplicated: {ids}")
    moves = [e for e in entries if e["action"] in POINTER_ACTIONS]
    for a, b in zip(moves, moves[1:], strict=False):
        checks(b["previous"] == a["version"], f"lost update: {b['promotion_id']} says previous={b['previous']}, "
               f"prior entry set {a['version']}")
    ptr = root / "champion.json"
    if not ptr.exists():
        checks(not moves, "audit records a champion but champion.json is missing")
        return None
    pointer = json.loads(ptr.read_text())
    v = pointer["version"]
    checks(bool(moves) and moves[-1]["version"] == v, f"pointer {v} != last audited champion "
           f"{moves[-1]['version'] if moves else None}")
    checks(moves[-1]["promotion_id"] == pointer.get("promotion_id"), "pointer and last audit entry are different "
           "promotions")
    want = (root / "models" / v / "submission.csv").read_bytes()
    checks((root / "submissions" / "latest.csv").read_bytes() == want, f"latest.csv is not {v}'s submission")
    checks((root / "submissions" / f"{v}.csv").read_bytes() == want, f"submissions/{v}.csv is not {v}'s")
    return pointer


def in_child(fn, *args, fault: str | None = None, timeout: float = 60) -> int:
    """Run ``fn(*args)`` in a forked child process (optionally with a fault armed); its exit code
    (-9 when the fault hook SIGKILLed it)."""
    ctx = mp.get_context("fork")

    def target():
        if fault:
            os.environ[FAULT_ENV] = fault
        fn(*args)

    p = ctx.Process(target=target)
    p.start()
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError(f"child {fn.__name__} hung")
    return p.exitcode


def turkey(*args, fault: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the ``turkey`` CLI in a subprocess (optionally with a fault armed)."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    r = subprocess.run([TURKEY, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"turkey {args} -> {r.returncode}: {r.stdout}{r.stderr}")
    return r


def can_mount() -> str | None:
    """None when this process may mount a tmpfs, else the reason why not."""
    if os.geteuid() != 0:
        return "needs root to mount a size-limited tmpfs (run make test-faults as root, as CI does)"
    return None


@contextmanager
def tmpfs(path: Path, size: str):
    """A fresh tmpfs of ``size`` (e.g. ``"2m"``) mounted at ``path``; unmounted afterwards."""
    reason = can_mount()
    if reason:
        pytest.skip(reason)
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, mode: str) -> None:
    """Remount a tmpfs from :func:`tmpfs` read-only (``"ro"``) or read-write (``"rw"``)."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem holding ``path`` until at most ``leave_bytes`` are free; returns the filler file."""
    filler = Path(path) / "filler.bin"
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as fh:
        remaining = max(0, free - leave_bytes)
        chunk = b"\0" * (1 << 16)
        try:
            while remaining > 0:
                fh.write(chunk[: min(len(chunk), remaining)])
                remaining -= min(len(chunk), remaining)
            fh.flush()
        except OSError:
            pass
    return filler
