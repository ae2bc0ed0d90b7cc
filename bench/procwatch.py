"""Peak memory of the processes the bench starts, sampled from ``/proc`` while they run.

Airflow records when each task instance ran and in which process (``task_instance.pid``), not its memory.
:class:`Watch` reads, every ``interval`` seconds in a thread, ``PPid`` and ``VmHWM`` (the peak resident set
size so far) from ``/proc/<pid>/status`` of every descendant of this process. ``VmHWM`` only grows, so any
sample after a peak sees it; a sample can only miss growth in the last ``interval`` before a process exits
(or, where tasks share one process, before the task ends). Linux only; elsewhere nothing is sampled.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

INTERVAL_S = 0.2


@dataclass
class Seen:
    """One process as the samples saw it: parent, first and last sample time, ``(time, VmHWM MiB)`` changes."""

    ppid: int
    first: float
    last: float
    hwm: list[tuple[float, float]] = field(default_factory=list)

    def peak(self, until: float | None = None) -> float | None:
        """The process's peak RSS as last sampled (before ``until`` when given), MiB."""
        vals = [m for t, m in self.hwm if until is None or t <= until]
        return vals[-1] if vals else None


def read_status(pid: str) -> tuple[int, float] | None:
    """``(PPid, VmHWM in MiB)`` of ``pid`` (None once it has gone, or for a kernel thread)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields["PPid"]), int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def descendants(root: int, table: dict[int, tuple[int, float]]) -> set[int]:
    """The pids in ``table`` (pid -> (ppid, hwm)) that descend from ``root``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


class Watch:
    """Samples this process's descendants (``with Watch() as w: ...``; then ``w.seen[pid]``)."""

    def __init__(self, interval: float = INTERVAL_S, root: int | None = None):
        self.interval, self.root = interval, root or os.getpid()
        self.seen: dict[int, Seen] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="procwatch", daemon=True)

    def sample(self) -> None:
        """Read every descendant's status once."""
        if not os.path.isdir("/proc"):
            return
        now = time.time()
        table = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := read_status(p))}
        for pid in descendants(self.root, table):
            ppid, hwm = table[pid]
            s = self.seen.get(pid)
            if s is None or s.ppid != ppid:  # new (or a reused pid)
                s = self.seen[pid] = Seen(ppid, now, now)
            s.last = now
            if not s.hwm or s.hwm[-1][1] != hwm:
                s.hwm.append((now, hwm))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Watch:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def task_memory(seen: dict[int, Seen], pid: int | None, start: float, end: float, shared: bool) -> dict:
    """A task instance's memory from the samples: ``peak_rss_mib`` of its process ``pid`` and
    ``child_peak_rss_mib`` of that process's largest child seen while the task ran (e.g. parse workers).

    ``shared``: the process ran other tasks too (``airflow dags test`` runs every task in one process), so its
    figure is the process's peak *so far* (sampled up to ``end``); otherwise it is the task process's own."""
    proc = seen.get(pid) if pid else None
    peak = proc.peak(end if shared else None) if proc else None
    kids = [s.peak() for s in seen.values() if s.ppid == pid and s.last >= start and s.first <= end]
    return {"peak_rss_mib": peak, "child_peak_rss_mib": max((k for k in kids if k), default=None)}
