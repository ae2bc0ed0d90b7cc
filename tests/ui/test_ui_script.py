"""``scripts/ui.py`` without starting Airflow: the per-AIRFLOW_HOME secrets file is private from its creation."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))


def test_ui_secrets_are_created_private_and_reused(tmp_path, monkeypatch):
    import ui

    # the file must be created 0600, not chmod-ed after the secrets were written with the umask's mode
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    old = os.umask(0o022)
    try:
        env = ui.ui_env(8999, tmp_path)
    finally:
        os.umask(old)
    secrets_file = tmp_path / "ui-secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    keys = json.loads(secrets_file.read_text())
    assert env["AIRFLOW__API__SECRET_KEY"] == keys["secret_key"] and len(keys["jwt_secret"]) >= 64
    assert ui.ui_env(8999, tmp_path)["AIRFLOW__API_AUTH__JWT_SECRET"] == keys["jwt_secret"]  # same pair next time


def test_stop_all_stops_the_whole_family_and_spares_a_reused_pid(monkeypatch):
    import subprocess
    import time

    import procs
    import psutil

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
