"""bench.procwatch: which processes descend from which, a process's peak so far, a task's memory."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import procwatch
from bench.procwatch import Seen, task_memory


def test_descendants_follow_parents_down_from_the_root():
    table = {2: (1, 0.0), 3: (2, 0.0), 4: (3, 0.0), 5: (9, 0.0)}
    assert procwatch.descendants(1, table) == {2, 3, 4}
    assert procwatch.descendants(3, table) == {4}


def test_peak_is_the_last_high_water_mark_sampled_up_to_a_time():
    s = Seen(ppid=1, first=0.0, last=5.0, hwm=[(0.0, 100.0), (2.0, 300.0), (4.0, 350.0)])
    assert s.peak() == 350.0 and s.peak(until=3.0) == 300.0 and s.peak(until=-1.0) is None


def test_task_memory_in_a_shared_process_and_in_its_own():
    seen = {
        10: Seen(1, 0.0, 9.0, [(0.0, 200.0), (3.0, 900.0), (8.0, 1000.0)]),  # the one dags-test process
        11: Seen(10, 1.0, 2.0, [(1.0, 400.0)]),  # a parse worker forked while the first task ran
        12: Seen(10, 6.0, 7.0, [(6.0, 500.0)]),
    }
    first = task_memory(seen, 10, 0.5, 2.5, shared=True)
    assert first == {"peak_rss_mib": 200.0, "child_peak_rss_mib": 400.0}
    assert task_memory(seen, 10, 5.0, 9.0, shared=True) == {"peak_rss_mib": 1000.0, "child_peak_rss_mib": 500.0}
    assert task_memory(seen, 11, 1.5, 1.6, shared=False)["peak_rss_mib"] == 400.0  # its own process: every sample
    assert task_memory(seen, None, 0.0, 1.0, shared=False) == {"peak_rss_mib": None, "child_peak_rss_mib": None}


def test_a_sample_sees_a_child_and_its_high_water_mark():
    code = "import sys; b = bytearray(64 << 20); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        w = procwatch.Watch(root=os.getpid())
        w.sample()
    finally:
        child.communicate("")
    assert w.seen[child.pid].ppid == os.getpid() and w.seen[child.pid].peak() > 60


def test_the_watch_thread_starts_and_stops():
    with procwatch.Watch(interval=0.01) as w:
        pass
    assert not w._thread.is_alive()
