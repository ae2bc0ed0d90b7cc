"""The CeleryExecutor deployment as processes on this machine: ``make test-distributed``'s set-up, also
used by ``bench.deployed``.

:class:`CeleryTopology` creates its own PostgreSQL database (``turkey_dist_<random>``) and claims an empty
Redis db index (from 5 up); migrates the metadata DB; starts the api-server, scheduler, dag-processor,
triggerer, a Celery worker on the default queue and one on the gpu queue (concurrency 1, one task per
child, like the compose gpu worker), all sharing one data root and one artifacts root (the "shared
volumes") under a fresh temporary folder. Every listener is on 127.0.0.1 (the workers and the triggerer
run with ``--skip-serve-logs``: their log servers would bind all interfaces); every component runs in its
own process group and :meth:`CeleryTopology.stop` stops them through :mod:`scripts.procs` (SIGTERM, then
SIGKILL after the grace period), flushes the Redis index and drops the database -- also after a failure.

Use it as a context manager::

    with CeleryTopology() as topo:        # started; stopped and cleaned up on exit
        topo.write_demo_data(400, 100)    # or copy files into topo.landing
        ...                               # topo.api_url, topo.password, topo.env, topo.dead_components()

Settings (environment): TURKEY_DIST_PG_HOST/PORT/USER, TURKEY_DIST_REDIS_HOST/PORT (see
:mod:`scripts.distributed.infra`), TURKEY_DIST_REDIS_DB (first index to try; exact when set),
TURKEY_DIST_GRACE (seconds between SIGTERM and SIGKILL, default 15).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.distributed import infra
from scripts.procs import free_port, spawn, stop_all

log = logging.getLogger(__name__)
CELERY_CONFIG_OPTIONS = "turkey_airflow.celery_worker.CELERY_CONFIG"  # workers pre-import Great Expectations
# [scheduler] scheduler_idle_sleep_time: the trade of waits between tasks against idle scheduler CPU, chosen by
# `python -m bench.scheduler_sweep` (its table: BENCHMARKS.md section 1b).
SCHEDULER_IDLE_SLEEP_S = "0.25"
# [workers] min_heartbeat_interval: also the longest a worker's task supervisor sleeps before it notices that its
# task process has exited; at Airflow's 5 s a finished task can hold its worker slot that much longer and the next
# task waits in the queue (seen in the queued -> running gaps of `python -m bench.deployed`, BENCHMARKS.md 1b).
MIN_HEARTBEAT_INTERVAL_S = "1"

DIST = Path(__file__).resolve().parent
REPO = DIST.parent.parent
GPU_HOST = "turkey-gpu-worker"
DEFAULT_HOST = "turkey-default-worker"
USER = "admin"


class ComponentDied(RuntimeError):
    """A component exited while the deployment was in use."""


class CeleryTopology:
    """One CeleryExecutor deployment: its database, Redis index, folders, environment and processes."""

    def __init__(self, base_env: dict | None = None, grace: float | None = None):
        """``base_env`` (default: this process's environment) is what every component inherits, with the
        deployment's settings on top; ``grace`` (default TURKEY_DIST_GRACE or 15) seconds from SIGTERM to
        SIGKILL when stopping."""
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.grace = float(grace if grace is not None else os.environ.get("TURKEY_DIST_GRACE", 15))
        self.work = Path(tempfile.mkdtemp(prefix="turkey-dist.", dir=os.environ.get("TMPDIR")))
        self.logs = self.work / "logs"
        self.airflow_home = self.work / "airflow_home"
        self.data_root = self.work / "shared" / "data"
        self.artifacts_root = self.work / "shared" / "artifacts"
        self.landing = self.data_root / "landing"
        self.db = f"{infra.PREFIX}{secrets.token_hex(4)}{os.getpid()}"
        self.token = f"turkey-dist-{os.getpid()}-{secrets.token_hex(8)}"
        self.password = f"dist-{secrets.token_urlsafe(12)}"
        self.redis_db: int | None = None
        self.db_created = False
        self.api_port = free_port()
        self.webhook_port = free_port()
        self.env: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def api_url(self) -> str:
        """Base URL of the API server (loopback)."""
        return f"http://127.0.0.1:{self.api_port}"

    # ------------------------------------------------------------------ start
    def __enter__(self) -> CeleryTopology:
        """Start the deployment (stopped again if starting fails)."""
        try:
            self.start()
        except BaseException:
            self.stop(keep_work=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Stop everything; the work folder stays when leaving with an exception."""
        self.stop(keep_work=exc_type is not None)

    def start(self) -> None:
        """Claim the database and Redis index, migrate, start the components (does not wait for them)."""
        log.info("work folder %s", self.work)
        for d in (self.logs, self.airflow_home, self.landing, self.artifacts_root):
            d.mkdir(parents=True, exist_ok=True)
        infra.check_reachable()
        infra.pg_create(self.db)
        self.db_created = True
        log.info("created database %s", self.db)
        wanted = os.environ.get("TURKEY_DIST_REDIS_DB")
        self.redis_db = infra.redis_claim(int(wanted or 5), self.token, exact=bool(wanted))
        log.info("claimed Redis db %s", self.redis_db)
        self.env = self._environment()
        log.info("airflow db migrate (%s)", self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        t0 = time.monotonic()
        self.run(["airflow", "db", "migrate"], "db-migrate", tail_on_error=40)
        log.info("migrated in %.0fs", time.monotonic() - t0)
        for name, (cmd, extra) in self._components().items():
            self.procs[name] = spawn(cmd, env={**self.env, **extra}, log_path=self.logs / f"{name}.log", cwd=REPO)
        log.info("started %s (API on %s)", " ".join(self.procs), self.api_url)

    def _environment(self) -> dict[str, str]:
        """The environment every component shares: CeleryExecutor on our database and Redis index,
        loopback URLs, the shared roots, the webhook connection pointing at ``webhook_port``."""
        redis_host, redis_port = infra.redis_address()
        passwords = self.airflow_home / "passwords.json"
        passwords.write_text(json.dumps({USER: self.password}) + "\n")
        env = {k: v for k, v in self.base_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            {
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "GX_ANALYTICS_ENABLED": "false",
                "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                "AIRFLOW_HOME": str(self.airflow_home),
                "TURKEY_DATA_ROOT": str(self.data_root),
                "TURKEY_ARTIFACTS_ROOT": str(self.artifacts_root),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),  # the plugins come by entry point
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": infra.pg_url(self.db),
                "AIRFLOW__CELERY__BROKER_URL": f"redis://{redis_host}:{redis_port}/{self.redis_db}",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + infra.pg_url(self.db),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
                "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": env.get("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "120"),
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": self.api_url,
                "AIRFLOW__API__SECRET_KEY": f"{self.token}-api",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API_AUTH__JWT_ISSUER": "turkey-dist",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                # Chosen by `python -m bench.scheduler_sweep` (BENCHMARKS.md section 1b); docker-compose.yaml matches.
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": env.get(
                    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME", SCHEDULER_IDLE_SLEEP_S
                ),
                # No timetable/asset-triggered runs: with catchup=False, unpausing would first start a run for the
                # latest weekly slot (default params) and, with max_active_runs=1, a triggered run would queue behind it.
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": env.get(
                    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", MIN_HEARTBEAT_INTERVAL_S
                ),
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
                # No TF thread caps: TensorFlow sizes its pools itself, as in docker-compose.yaml (measured by
                # `TF_NUM_INTEROP_THREADS=1 python -m bench.bare_pipeline` against the same without it).
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                # notifications go to a loopback webhook receiver on webhook_port (the turkey_webhook connection)
                "AIRFLOW_CONN_TURKEY_WEBHOOK": json.dumps(
                    {"conn_type": "http", "host": f"http://127.0.0.1:{self.webhook_port}/turkey"}
                ),
            }
        )
        return env

    def _components(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Name -> (command, extra environment) of every component.

        Each worker gets its own scratch TMPDIR (a task that handed a local temp path to the next task would
        show up in the XCom check) and a hostname callable, so task instances record the worker's name."""
        worker_env = {"AIRFLOW__CORE__HOSTNAME_CALLABLE": "turkey_airflow.runtime.worker_hostname"}
        tmp = {host: self.work / f"tmp-{host.split('-')[1]}" for host in (DEFAULT_HOST, GPU_HOST)}
        for d in tmp.values():
            d.mkdir(exist_ok=True)
        worker = ["airflow", "celery", "worker", "--skip-serve-logs", "--celery-hostname"]
        return {
            "api-server": (["airflow", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port),
                            "--workers", "1"], {}),
            "scheduler": (["airflow", "scheduler"], {}),
            "dag-processor": (["airflow", "dag-processor"], {}),
            "triggerer": (["airflow", "triggerer", "--skip-serve-logs"], {}),
            "worker-default": (
                [*worker, DEFAULT_HOST, "--queues", "default", "--concurrency", "2"],
                {**worker_env, "TURKEY_WORKER_HOSTNAME": DEFAULT_HOST, "TMPDIR": str(tmp[DEFAULT_HOST])},
            ),
            "worker-gpu": (
                [*worker, GPU_HOST, "--queues", "gpu", "--concurrency", "1"],
                {
                    **worker_env,
                    "TURKEY_WORKER_HOSTNAME": GPU_HOST,
                    "TMPDIR": str(tmp[GPU_HOST]),
                    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"worker_max_tasks_per_child": 1}),
                },
            ),
        }

    # ------------------------------------------------------------------ use
    def run(self, cmd: list[str], name: str, *, tail_on_error: int = 0, timeout: float = 600) -> None:
        """Run ``cmd`` to completion in the deployment's environment, output in ``logs/<name>.log``; raise
        :class:`infra.InfraError` (with the log's last ``tail_on_error`` lines) when it fails."""
        path = self.logs / f"{name}.log"
        with open(path, "wb") as out:
            rc = subprocess.run(cmd, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                check=False).returncode
        if rc != 0:
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-tail_on_error:]) if tail_on_error else ""
            raise infra.InfraError(f"{' '.join(cmd[:3])} exited with {rc} (log {path})" + (f":\n{tail}" if tail else ""))

    def write_demo_data(self, train_size: int, test_size: int) -> None:
        """``turkey demo-data`` into the shared landing folder."""
        self.run(["turkey", "demo-data", "--out", str(self.landing), "--train-size", str(train_size),
                  "--test-size", str(test_size)], "demo-data", tail_on_error=40)
        log.info("demo data: %d train / %d test records in %s", train_size, test_size, self.landing)

    def dead_components(self) -> list[str]:
        """Names of the components that have exited."""
        return [name for name, p in self.procs.items() if p.poll() is not None]

    def worker_ready(self, host: str) -> bool:
        """Whether the Celery worker ``host`` has logged that it is ready to take tasks."""
        name = "worker-gpu" if host == GPU_HOST else "worker-default"
        try:
            return f"celery@{host} ready." in (self.logs / f"{name}.log").read_text(errors="replace")
        except OSError:
            return False

    def task_logs(self, dag_id: str) -> Path:
        """The folder of ``dag_id``'s task logs (every worker writes to the shared AIRFLOW_HOME)."""
        return self.airflow_home / "logs" / f"dag_id={dag_id}"

    # ------------------------------------------------------------------ stop
    def stop(self, keep_work: bool = False) -> None:
        """Stop every component (by process group), flush the Redis index, drop the database; remove the
        work folder unless ``keep_work``. Safe to call more than once; problems are logged, not raised."""
        if self.procs:
            t0 = time.monotonic()
            log.info("stopping %d components: SIGTERM (SIGKILL after %.0fs)", len(self.procs), self.grace)
            stop_all(list(self.procs.values()), grace=self.grace)
            self.procs = {}
            log.info("stopped in %.1fs", time.monotonic() - t0)
        if self.redis_db is not None:
            try:
                infra.redis_flush(self.redis_db, self.token)
                log.info("flushed Redis db %s", self.redis_db)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                log.warning("could not flush Redis db %s: %s", self.redis_db, exc)
            self.redis_db = None
        if self.db_created:
            try:
                infra.pg_drop(self.db)
                log.info("dropped database %s", self.db)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                log.warning("could not drop database %s: %s", self.db, exc)
            self.db_created = False
        if keep_work:
            log.info("logs kept in %s", self.logs)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
