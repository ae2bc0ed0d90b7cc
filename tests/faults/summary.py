"""Render the fault-injection suite's counts (``bench/out/fault-summary.json``, written by ``make test-faults``)
as BENCHMARKS.md's reliability section.

    python -m tests.faults.summary                   # print the section
    python -m tests.faults.summary --write BENCHMARKS.md   # replace the section between its markers

``bench/run_bench.py`` keeps this block when it regenerates the rest of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.faults.conftest import SUMMARY

START = "<!-- reliability:start (python -m tests.faults.summary --write BENCHMARKS.md) -->"
END = "<!-- reliability:end -->"


def render(s: dict) -> str:
    lines = [
        START,
        "## 5. Reliability: fault-injection suite",
        "",
        f"From `make test-faults` on {s['date']} (git {s['git']}, {'as root' if s['as_root'] else 'NOT as root: tmpfs cases skipped'}, "
        f"{s['seconds']:.0f} s); rendered by `python -m tests.faults.summary --write BENCHMARKS.md` from "
        "`bench/out/fault-summary.json`, which the suite writes. A fault is one injected event (a SIGKILL of a "
        "real process inside the registry, a concurrent promotion pair, a full or read-only filesystem, a "
        "damaged file, an unsafe input); an invariant check is one asserted property of the state afterwards "
        "(pointer = latest.csv = last audit entry, audit entries unique and chained, every version intact, "
        "no leftovers, previous champion intact, the error message one clear line); the race tests re-check the "
        "whole audit chain and every version's hashes after each round, hence the large count. This section "
        "is not produced by `make bench` (which keeps it as is).",
        "",
        "| | count |",
        "| :--- | ---: |",
        f"| faults injected | {s['faults_injected']} |",
        f"| invariant checks | {s['invariant_checks']} |",
        f"| **invariant violations / failed tests** | **{s['failed']}** |",
        f"| tests passed / skipped | {s['passed']} / {s['skipped']} |",
        "",
        "| fault | injected |",
        "| :--- | ---: |",
    ]
    lines += [f"| {kind} | {n} |" for kind, n in s["faults_by_kind"].items()]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def splice(text: str, section: str) -> str:
    """``text`` with its reliability block replaced by ``section`` (appended when it has none)."""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        return head + section.rstrip("\n") + tail
    return text.rstrip("\n") + "\n\n" + section


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--summary", default=str(SUMMARY))
    p.add_argument("--write", metavar="MARKDOWN", help="replace the reliability section of this file")
    a = p.parse_args(argv)
    path = Path(a.summary)
    if not path.is_file():
        print(f"error: {path} not found; run `make test-faults` first", file=sys.stderr)
        return 1
    section = render(json.loads(path.read_text()))
    if a.write:
        target = Path(a.write)
        target.write_text(splice(target.read_text(), section))
        print(f"updated the reliability section of {target}")
    else:
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
