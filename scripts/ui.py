"""``make ui``: the embedded default as a real Airflow deployment, in the foreground.

Starts the API server, scheduler, DAG processor and triggerer (LocalExecutor on SQLite, local folders --
the settings of ``scripts/env.sh``) with every listener on 127.0.0.1: the API server on ``--port``
(default 8080), the execution API URL set to match, serve-logs off (the API server reads task logs from
the local files), parallelism 2. Prints the URL and the login once the API server answers. Ctrl-C (or
SIGTERM) stops every process it started, by process group, within 10 s.

    python scripts/ui.py [--port 8080] [--no-demo-data]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from scripts.procs import port_in_use, spawn, stop_all

REPO = Path(__file__).resolve().parent.parent
COMPONENTS = {
    "api-server": lambda port: ["api-server", "--host", "127.0.0.1", "--port", str(port)],
    "scheduler": lambda port: ["scheduler", "--skip-serve-logs"],
    "dag-processor": lambda port: ["dag-processor"],
    "triggerer": lambda port: ["triggerer", "--skip-serve-logs"],
}
STOP_GRACE_S = 3.0


def ui_env(port: int, home: Path) -> dict:
    """The environment of every component: loopback only, URLs matching ``port``, sized for a small machine."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    secrets_file = home / "ui-secrets.json"
    if not secrets_file.is_file():  # one pair per AIRFLOW_HOME: all components agree, logins survive restarts
        keys = {"secret_key": secrets.token_urlsafe(32), "jwt_secret": secrets.token_urlsafe(64)}
        with contextlib.suppress(FileExistsError):  # another `make ui` made it meanwhile: use theirs
            fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(keys))
    keys = json.loads(secrets_file.read_text())
    base = f"http://127.0.0.1:{port}"
    env.update(
        {
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"{base}/",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            "AIRFLOW__API__SECRET_KEY": keys["secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__CORE__EXECUTOR": env.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "2"),
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    return env


def wait_ready(port: int, procs: dict, stop_requested, timeout: float = 240.0) -> bool:
    """True once the API server answers; False when a stop was requested meanwhile."""
    url = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop_requested():
            return False
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the API server did not answer on {url} within {timeout:.0f}s")


def login_line(home: Path) -> str:
    from_file = home / "simple_auth_manager_passwords.json.generated"
    pwfile = Path(os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", from_file))
    for _ in range(50):
        if pwfile.is_file():
            users = json.loads(pwfile.read_text() or "{}")
            return ", ".join(f"user {u!r} password {p!r}" for u, p in users.items())
        time.sleep(0.2)
    return f"see {pwfile}"


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
    ap.add_argument("--no-demo-data", action="store_true", help="do not generate demo data when landing/ is empty")
    args = ap.parse_args(argv)
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if port_in_use(args.port):
        print(f"port {args.port} on 127.0.0.1 is in use; choose another: make ui PORT=8090", file=sys.stderr)
        return 1
    env = ui_env(args.port, home)
    landing = Path(env["TURKEY_DATA_ROOT"]) / "landing"
    if not args.no_demo_data and not ((landing / "train.json").is_file() and (landing / "test.json").is_file()):
        print(f"==> no train.json/test.json in {landing}: generating demo data")
        subprocess.run(["turkey", "demo-data", "--out", str(landing)], env=env, check=True)
    Path(env["TURKEY_ARTIFACTS_ROOT"]).mkdir(parents=True, exist_ok=True)
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"==> Airflow metadata DB: {env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}", flush=True)
    mig = subprocess.run(["airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    if mig.returncode != 0:
        print(mig.stdout[-3000:] + mig.stderr[-3000:], file=sys.stderr)
        return 1

    procs: dict[str, subprocess.Popen] = {}
    stopping = {"signal": None}

    def on_signal(signum, frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rc = 0
    try:
        for name, make_args in COMPONENTS.items():
            procs[name] = spawn(["airflow", *make_args(args.port)], env=env, log_path=logs / f"ui-{name}.log", cwd=REPO)
        print(f"==> starting {', '.join(procs)} (logs: {logs}/ui-*.log)", flush=True)
        if not wait_ready(args.port, procs, lambda: stopping["signal"] is not None):
            return rc
        print(
            f"\n    Airflow UI:  http://127.0.0.1:{args.port}/\n"
            f"    Login:       {login_line(home)}\n"
            f"    Models:      http://127.0.0.1:{args.port}/turkey/models (also 'Models' in the Airflow menu)\n"
            "    Ctrl-C stops everything.\n",
            flush=True,
        )
        while stopping["signal"] is None:
            for name, p in procs.items():
                if p.poll() is not None:
                    print(
                        f"!! {name} exited with {p.returncode}; last lines of its log:\n"
                        f"{tail(logs / f'ui-{name}.log')}",
                        file=sys.stderr,
                        flush=True,
                    )
                    stopping["signal"] = "exit"
                    rc = 1
                    break
            time.sleep(0.5)
    except RuntimeError as exc:
        name = next((n for n, p in procs.items() if p.poll() is not None), "api-server")
        print(f"!! {exc}; last lines of {name}'s log:\n{tail(logs / f'ui-{name}.log')}", file=sys.stderr, flush=True)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        t0 = time.monotonic()
        print("==> stopping all components ...", flush=True)
        stop_all(list(procs.values()), grace=STOP_GRACE_S)
        print(f"==> stopped in {time.monotonic() - t0:.1f}s", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
