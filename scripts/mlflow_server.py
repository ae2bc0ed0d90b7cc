"""``make mlflow``: an MLflow tracking server beside Airflow, on 127.0.0.1, for the mirror (docs/mlflow.md).

SQLite backend (``<folder>/mlflow.db``) and a local artifact root (``<folder>/artifacts``) served through the
server (``--serve-artifacts``), so clients on other machines need no access to the folder. One worker,
job execution and telemetry off. In the foreground; Ctrl-C (or SIGTERM) stops it by process group.

    python -m scripts.mlflow_server [--port 5000] [--folder .mlflow]

Then ``export MLFLOW_TRACKING_URI=http://127.0.0.1:5000`` before ``make ui`` / ``make run`` (needs
``make install-mlflow``: the server runs from ``.venv-mlflow``). The tests start one with :func:`start`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from scripts.procs import interrupt_on_sigterm, port_in_use, spawn, stop_all

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120.0


def mlflow_command() -> str:
    """The ``mlflow`` executable beside this interpreter (else on PATH)."""
    here = Path(sys.executable).parent / "mlflow"
    found = str(here) if here.is_file() else shutil.which("mlflow")
    if not found:
        raise SystemExit("mlflow is not installed: run `make install-mlflow` (the .venv-mlflow environment)")
    return found


def start(port: int, folder: Path, log_path: Path | None = None):
    """Start a tracking server on 127.0.0.1:``port`` storing under ``folder``; returns the process once
    ``/health`` answers (SystemExit with the log's tail if it does not within :data:`START_TIMEOUT_S`)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if port_in_use(port):
        raise SystemExit(f"127.0.0.1:{port} is taken; choose another --port")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "true"}
    log_path = Path(log_path or folder / "server.log")
    cmd = [mlflow_command(), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
           "--artifacts-destination", str(folder / "artifacts"), "--serve-artifacts"]
    proc = spawn(cmd, env=env, log_path=log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_all([proc])
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.is_file() else ""
    raise SystemExit(f"the MLflow server did not start on 127.0.0.1:{port}:\n{tail}")


def main(argv=None) -> int:
    """Run a server in the foreground until Ctrl-C."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--folder", default=str(REPO / ".mlflow"))
    a = p.parse_args(argv)
    interrupt_on_sigterm()
    proc = start(a.port, Path(a.folder))
    print(f"MLflow on http://127.0.0.1:{a.port} (data in {Path(a.folder).resolve()}); "
          f"export MLFLOW_TRACKING_URI=http://127.0.0.1:{a.port}; Ctrl-C stops it", flush=True)
    try:
        while proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all([proc])
    return 0


if __name__ == "__main__":
    sys.exit(main())
