"""Run turkey_training through `airflow dags test` in an isolated AIRFLOW_HOME, and inspect the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO


class Env:
    def __init__(self, root: Path, migrate: bool = True):
        self.root = Path(root)
        self.home = self.root / "airflow"
        self.data = self.root / "data"
        self.artifacts = self.root / "artifacts"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "TURKEY_DATA_ROOT": str(self.data),
            "TURKEY_ARTIFACTS_ROOT": str(self.artifacts),
            "GX_ANALYTICS_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        # Not measured by `make test`'s coverage: what these runs do is asserted by the e2e tests, and the code
        # they run is covered in-process (tests/turkey_airflow), at a fraction of the cost.
        self.env.pop("COVERAGE_PROCESS_CONFIG", None)
        self.home.mkdir(parents=True, exist_ok=True)
        if migrate:
            self._run([sys.executable, "-m", "airflow", "db", "migrate"])

    def clone(self, root: Path) -> Env:
        """An independent copy of this environment (metadata DB, data, artifacts) under ``root``."""
        import shutil

        shutil.copytree(self.root, root, symlinks=True)
        return Env(root, migrate=False)

    def airflow(self, *args: str) -> str:
        """Run an ``airflow`` CLI command in this environment; returns its output, raises on failure."""
        out = self._run([sys.executable, "-m", "airflow", *args])
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-3000:]}")
        return out.stdout + out.stderr

    def _run(self, cmd, timeout=600):
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if out.returncode != 0 and cmd[2:4] == ["airflow", "db"]:
            raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
        return out

    def _step(self, commands: list[list[str]], dag_id: str) -> dict:
        """``commands`` and the result of ``dag_id``'s latest run, in one process (tests.support.airflow_run)."""
        spec = json.dumps({"commands": commands, "result_of": dag_id})
        out = self._run([sys.executable, "-m", "tests.support.airflow_run", spec])
        log = out.stdout + out.stderr
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if out.returncode != 0 or not line:
            raise RuntimeError("could not run or read the run:\n" + log[-5000:])
        return {**json.loads(line[-1][len("RESULT ") :]), "log": log}

    def trigger(self, conf: dict | None = None, dag_id: str = "turkey_training", before=()) -> dict:
        """`airflow dags test` of ``dag_id`` with ``conf`` (after the ``airflow`` commands ``before``, e.g.
        ``[["dags", "unpause", "x"]]``); returns the run's state and task states, all asset events, all runs
        (``all_runs``: dag_id, run_id, state), the asset-triggered runs Airflow has queued (``queued``: asset
        name, target dag) and the log."""
        return self._step([*before, ["dags", "test", dag_id, "--conf", json.dumps(conf or {})]], dag_id)

    def result(self, dag_id: str = "turkey_training") -> dict:
        """What :meth:`trigger` returns, for the latest run of ``dag_id`` (without a log)."""
        return self._step([], dag_id)


RESPOND = r"""
import json, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
dag_id, run_id, task_id, option, comment, user, password = sys.argv[1:8]
client = TestClient(create_app(apps="core"))
r = client.post("/auth/token", json={"username": user, "password": password})
r.raise_for_status()
headers = {"Authorization": "Bearer " + r.json()["access_token"]}
from urllib.parse import quote
url = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"
body = {"chosen_options": [option], "params_input": {"comment": comment} if comment else {}}
r = client.patch(url, json=body, headers=headers)
print("RESPONSE", r.status_code, json.dumps(r.json(), default=str))
sys.exit(0 if r.status_code == 200 else 1)
"""


def enable_api_login(env: Env, user: str = "reviewer", password: str = "turkey-test-pw") -> tuple[str, str]:
    """Simple auth manager users for :func:`respond_hitl` (an admin ``user`` with ``password``)."""
    pw_file = env.home / "passwords.json"
    pw_file.write_text(json.dumps({user: password}))
    env.env.update({
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "AIRFLOW__API_AUTH__JWT_SECRET": "turkey-test-jwt-secret-" + "x" * 48,  # >= 64 bytes for HS512
    })
    return user, password


def start_run(env: Env, conf: dict) -> subprocess.Popen:
    """`airflow dags test` in the background (for runs that wait for a human); output in a file."""
    with open(env.root / f"dags-test-{len(list(env.root.glob('dags-test-*.log')))}.log", "w") as out:
        return subprocess.Popen(["airflow", "dags", "test", "turkey_training", "--conf", json.dumps(conf)],
                                env=env.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def respond_hitl(env: Env, run_id: str, option: str, comment: str | None, user: str, password: str,
                 task_id: str = "approve_promotion") -> dict:
    """Answer a waiting approval through the public REST API's HITL route (PATCH .../hitlDetails), served
    in-process by Airflow's own FastAPI app on the test's metadata DB, as user ``user``."""
    out = env._run([sys.executable, "-c", RESPOND, "turkey_training", run_id, task_id, option, comment or "",
                    user, password])
    line = [x for x in out.stdout.splitlines() if x.startswith("RESPONSE ")]
    if out.returncode != 0 or not line:
        raise RuntimeError("HITL response failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    return json.loads(line[-1].split(" ", 2)[2])
