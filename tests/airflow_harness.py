"""Run turkey_training through `airflow dags test` in an isolated AIRFLOW_HOME, and inspect the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

QUERY = r"""
import json, sys
from airflow.utils.session import create_session
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
dag_id = sys.argv[1]
with create_session() as s:
    runs = s.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id).all()
    run = runs[-1]
    tis = {ti.task_id: str(ti.state) for ti in s.query(TaskInstance).filter(TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id)}
    events = [(e.asset.name, e.extra) for e in s.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).order_by(AssetEvent.id)]
    all_runs = [(r.dag_id, r.run_id, str(r.state)) for r in s.query(DagRun).order_by(DagRun.id)]
    queued = sorted((q.asset.name, q.target_dag_id) for q in s.query(AssetDagRunQueue))
print("RESULT " + json.dumps({"state": str(run.state), "tasks": tis, "events": events, "runs": len(runs),
                              "all_runs": all_runs, "queued": queued, "run_id": run.run_id}, default=str))
"""


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
            "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'plugins'}",  # this checkout's ml, whatever the venv links
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.home.mkdir(parents=True, exist_ok=True)
        if migrate:
            self._run(["airflow", "db", "migrate"])

    def clone(self, root: Path) -> Env:
        """An independent copy of this environment (metadata DB, data, artifacts) under ``root``."""
        import shutil

        shutil.copytree(self.root, root, symlinks=True)
        return Env(root, migrate=False)

    def airflow(self, *args: str):
        """Run an ``airflow`` CLI command in this environment; raises on failure."""
        out = self._run(["airflow", *args])
        if out.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-3000:]}")
        return out

    def _run(self, cmd, timeout=600):
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if out.returncode != 0 and cmd[:2] == ["airflow", "db"]:
            raise RuntimeError(out.stdout[-3000:] + out.stderr[-3000:])
        return out

    def trigger(self, conf: dict | None = None, dag_id: str = "turkey_training") -> dict:
        """`airflow dags test` of ``dag_id`` with ``conf``; returns the run's state and task states, all asset
        events, all runs (``all_runs``: dag_id, run_id, state), the asset-triggered runs Airflow has queued
        (``queued``: asset name, target dag) and the log."""
        out = self._run(["airflow", "dags", "test", dag_id, "--conf", json.dumps(conf or {})])
        return self.result(out.stdout + out.stderr, dag_id)

    def result(self, log: str = "", dag_id: str = "turkey_training") -> dict:
        """What :meth:`trigger` returns, for the latest run of ``dag_id`` (``log``: its output)."""
        q = self._run([sys.executable, "-c", QUERY, dag_id])
        line = [x for x in q.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            raise RuntimeError("could not read the run result:\n" + q.stdout[-2000:] + q.stderr[-3000:] + log[-3000:])
        result = json.loads(line[-1][len("RESULT ") :])
        result["log"] = log
        return result


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
