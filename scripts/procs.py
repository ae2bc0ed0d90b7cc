"""The one process-group helper of the supervisors (``make ui``, ``make test-ui``, ``make test-distributed``,
``make run``, ``bench.deployed``): start each child in its own session, stop it by process group --
SIGTERM, then SIGKILL after a grace period -- and reap everything, including descendants that left the
group; plus the loopback port helpers. Standard library plus psutil (an Airflow dependency), no Airflow import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


def spawn(cmd, *, env=None, log_path=None, cwd=None, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group), output appended to ``log_path``.

    Without ``log_path`` the output goes to ``stdout``: discarded by default, ``None`` to share this
    process's stdout, ``subprocess.PIPE`` to read it (``proc.stdout``, bytes)."""
    out = stdout
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        out = open(log_path, "ab")  # noqa: SIM115 - the child keeps it; closed in stop_all
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    proc.log_file = out if log_path else None
    return proc


def _descendants(pid: int) -> list:
    """``pid``'s descendants as ``psutil.Process`` objects: they remember each process's start time, so a
    signal sent later never reaches an unrelated process that got a recorded PID after ours exited."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_process(proc, sig: int) -> None:
    """Signal a recorded ``psutil.Process``; nothing if it is gone or its PID now belongs to another process."""
    import psutil

    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)  # psutil checks the start time first (a reused PID raises NoSuchProcess)


def _running(proc) -> bool:
    """Whether a recorded ``psutil.Process`` still runs (a zombie does not)."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pgid: int, sig: int) -> None:
    """Signal process group ``pgid``; nothing if it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _pgid(proc) -> int | None:
    """The process group of ``proc``, or None when it is gone."""
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_all(procs, grace: float = 5.0) -> None:
    """Stop every process we started and all of their descendants: SIGTERM to each process group (and to
    descendants that moved to another group), SIGKILL whatever is left after ``grace`` seconds, then reap."""
    procs = [p for p in procs if p is not None]
    family = {p.pid: set(_descendants(p.pid)) for p in procs}
    for p in procs:
        _signal_group(p.pid, signal.SIGTERM)
        for member in family[p.pid]:
            _signal_process(member, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for p in procs:
            p.poll()
        if not any(p.poll() is None or any(_running(m) for m in family[p.pid]) for p in procs):
            break
        time.sleep(0.1)
    left = [p.pid for p in procs if p.poll() is None] + [
        m.pid for p in procs for m in family[p.pid] if _running(m)
    ]
    if left:
        log.warning("still running after %.0f s: %s: SIGKILL", grace, " ".join(map(str, sorted(set(left)))))
    for p in procs:
        family[p.pid] |= set(_descendants(p.pid))
        # the group id stays reserved while our child or a member of its group lives; otherwise it may be reused
        if p.poll() is None or any(_running(m) and _pgid(m) == p.pid for m in family[p.pid]):
            _signal_group(p.pid, signal.SIGKILL)
        for member in family[p.pid]:
            _signal_process(member, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=2)
        if getattr(p, "log_file", None):
            p.log_file.close()


def _raise_interrupt(signum, frame) -> None:
    """Signal handler: unwind like Ctrl-C."""
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt in the main thread, so a supervisor's ``finally`` (stopping its
    children) runs when it is terminated as when Ctrl-C is pressed."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
