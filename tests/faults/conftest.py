"""The fault-injection suite (``make test-faults``): counts every injected fault and invariant check and
writes them to ``bench/out/fault-summary.json`` (rendered into BENCHMARKS.md by ``tests/faults/summary.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.helpers import Checks
from tests.support import REPO

SUMMARY = Path(os.environ.get("TURKEY_FAULT_SUMMARY", REPO / "bench" / "out" / "fault-summary.json"))


class Ledger:
    """Faults injected (by kind) and invariant checks made, over the whole session."""

    def __init__(self):
        self.faults = Counter()
        self.checks = Checks()
        self.outcomes: dict[str, str] = {}

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] += n


_LEDGER = Ledger()


@pytest.fixture
def ledger() -> Ledger:
    return _LEDGER


@pytest.fixture(autouse=True)
def _no_fault_armed(monkeypatch):
    """The hook is armed only inside the children that a test means to kill."""
    monkeypatch.delenv("TURKEY_FAULT_INJECT", raising=False)


def pytest_sessionstart(session):
    session.config._fault_t0 = time.time()


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _LEDGER.outcomes[report.nodeid] = report.outcome


def pytest_sessionfinish(session, exitstatus):
    if not _LEDGER.outcomes:
        return
    try:
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001
        git = None
    outcomes = Counter(_LEDGER.outcomes.values())
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git,
        "as_root": os.geteuid() == 0,
        "seconds": round(time.time() - session.config._fault_t0, 1),
        "tests": len(_LEDGER.outcomes),
        "passed": outcomes.get("passed", 0),
        "failed": outcomes.get("failed", 0),
        "skipped": outcomes.get("skipped", 0),
        "faults_injected": sum(_LEDGER.faults.values()),
        "faults_by_kind": dict(sorted(_LEDGER.faults.items())),
        "invariant_checks": _LEDGER.checks.n,
        "outcomes": dict(sorted(_LEDGER.outcomes.items())),
    }
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
