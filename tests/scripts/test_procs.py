"""scripts/procs.py: stopping a process family by PID, never a reused one."""

from __future__ import annotations

import sys


def test_stop_all_stops_the_whole_family_and_spares_a_reused_pid(monkeypatch):
    import subprocess
    import time

    import psutil

    from scripts import procs

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    supervisor = procs.spawn(
        [sys.executable, "-c", f"import subprocess, time; subprocess.Popen({sleeper!r}); time.sleep(120)"]
    )
    unrelated = subprocess.Popen(sleeper, start_new_session=True)
    try:
        real = procs._descendants
        deadline = time.monotonic() + 30
        while not real(supervisor.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        children = real(supervisor.pid)
        assert children, "the supervisor's child never started"

        def with_a_reused_pid(pid):  # a descendant recorded earlier whose PID now belongs to `unrelated`
            stale = psutil.Process(unrelated.pid)
            stale._ident = (stale.pid, stale._ident[1] - 1000)  # recorded with an older start time
            return [*real(pid), stale]

        monkeypatch.setattr(procs, "_descendants", with_a_reused_pid)
        procs.stop_all([supervisor], grace=2)
        assert supervisor.poll() is not None and not [c.pid for c in children if procs.alive(c.pid)]
        assert unrelated.poll() is None, "a process that merely reused a recorded PID was signalled"
    finally:
        unrelated.kill()
        unrelated.wait()
        for c in procs._descendants(supervisor.pid) if supervisor.poll() is None else []:
            c.kill()
        supervisor.kill()
        supervisor.wait()
