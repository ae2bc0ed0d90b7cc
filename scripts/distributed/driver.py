"""``make test-distributed``: turkey_training runs on the CeleryExecutor, every Airflow component a process.

Needs PostgreSQL and Redis (defaults 127.0.0.1:5432, user postgres with trust auth or PGPASSWORD;
127.0.0.1:6379). Starts the deployment of :mod:`scripts.distributed.topology` (its own database and Redis
index, api-server, scheduler, dag-processor, triggerer, a default-queue and a gpu-queue Celery worker on
shared data/artifacts roots), writes demo data, then runs :mod:`scripts.distributed.check_run` (trigger
through the REST API, assert where each task ran, approve one run and reject another through the HITL
REST API, receive the notifications on a loopback webhook) while watching that no component dies, and
asks the workers how they are configured (:func:`scripts.distributed.infra.celery_check`). On exit, also
on failure, Ctrl-C or SIGTERM, it stops every process it started, flushes its Redis index and drops its
database. The last line says ``distributed: 1 passed, 0 failed`` (or ``0 passed, 1 failed``).

    source scripts/env.sh && python -m scripts.distributed.driver      # what scripts/distributed_test.sh runs

Settings (environment): TURKEY_DIST_PG_HOST/PORT/USER, TURKEY_DIST_REDIS_HOST/PORT,
TURKEY_DIST_REDIS_DB (first index to try; exact when set), TURKEY_DIST_CONF (run conf JSON),
TURKEY_DIST_TRAIN_SIZE/TEST_SIZE (demo data), TURKEY_DIST_TIMEOUT (seconds for the run, default 480),
TURKEY_DIST_GRACE (seconds from SIGTERM to SIGKILL when stopping, default 15),
TURKEY_DIST_KEEP=1 (keep the temp folder with logs even on success).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

from scripts.distributed.infra import InfraError
from scripts.distributed.topology import DEFAULT_HOST, GPU_HOST, REPO, CeleryTopology
from scripts.procs import interrupt_on_sigterm, spawn, stop_all

log = logging.getLogger(__name__)

DEFAULT_CONF = '{"epochs": 5, "min_val_accuracy": 0.5, "min_records": 50}'
WATCH_EVERY_S = 2.0
ERROR_LINE = re.compile(r"ERROR|Error|error|Traceback|raise")


def run_checks(topo: CeleryTopology, conf: str, timeout: float) -> int:
    """Run check_run.py against the started deployment, stopping it early when a component dies; then the
    Celery workers' self-description. 0 when everything passed."""
    checker = spawn(
        [sys.executable, "-m", "scripts.distributed.check_run", "--api", topo.api_url, "--password", topo.password,
         "--conf", conf, "--gpu-host", GPU_HOST, "--default-host", DEFAULT_HOST, "--timeout", str(timeout),
         "--summary", topo.work / "summary.json", "--webhook-port", str(topo.webhook_port)],
        env=topo.env,
        cwd=REPO,
        stdout=None,  # its PASS/FAIL lines and task table are this test's output
    )
    try:
        while checker.poll() is None:
            if dead := topo.dead_components():
                log.error("component %s exited early", ", ".join(dead))
                break
            time.sleep(WATCH_EVERY_S)
    finally:
        stop_all([checker], grace=5)
    rc = checker.returncode
    if dead := topo.dead_components():
        log.error("component %s is not running", ", ".join(dead))
        rc = rc or 1
    celery = [sys.executable, "-m", "scripts.distributed.infra", "celery-check", f"celery@{GPU_HOST}",
              f"celery@{DEFAULT_HOST}"]
    sys.stdout.flush()
    if subprocess.run(celery, env=topo.env, cwd=REPO, timeout=120, check=False).returncode != 0:
        rc = rc or 1
    return rc


def dump_logs(topo: CeleryTopology, lines: int = 15) -> None:
    """Print the last lines of every component's log and the error lines of up to three failed task logs."""
    for f in sorted(topo.logs.glob("*.log")):
        text = [ln for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
        if text:
            print(f"----- last lines of {f.name}")
            print("\n".join(ln[:300] for ln in text[-lines:]))
    failed = []
    for f in sorted(topo.task_logs("turkey_training").rglob("*.log")):
        text = f.read_text(errors="replace")
        if re.search(r"Task failed|ERROR|Traceback", text):
            failed.append((f, text))
    for f, text in failed[:3]:
        print(f"----- task log {f}")
        print("\n".join(ln[:400] for ln in text.splitlines() if ERROR_LINE.search(ln))[-20 * 400:])


def main() -> int:
    """Start, check, stop; print the one-line verdict last. Exit 0 on success, 1 on failure, 130 when stopped
    by Ctrl-C or SIGTERM."""
    logging.basicConfig(format="[dist %(asctime)s] %(message)s", datefmt="%H:%M:%S", level=logging.INFO,
                        stream=sys.stdout)
    t0 = time.monotonic()
    interrupt_on_sigterm()
    conf = os.environ.get("TURKEY_DIST_CONF") or DEFAULT_CONF
    timeout = float(os.environ.get("TURKEY_DIST_TIMEOUT", 480))
    keep = os.environ.get("TURKEY_DIST_KEEP", "0") == "1"
    topo = CeleryTopology()
    ok, rc = False, 1
    try:
        topo.start()
        topo.write_demo_data(int(os.environ.get("TURKEY_DIST_TRAIN_SIZE", 400)),
                             int(os.environ.get("TURKEY_DIST_TEST_SIZE", 100)))
        check_rc = run_checks(topo, conf, timeout)
        ok = check_rc == 0
        if not ok:
            log.error("FAILED (check_run exit %s)", check_rc)
            dump_logs(topo)
    except KeyboardInterrupt:
        log.warning("interrupted")
        rc = 130
    except InfraError as exc:
        log.error("%s", exc)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        topo.stop(keep_work=keep or not ok)
        log.info("total wall time %.0fs", time.monotonic() - t0)
        print(f"distributed: {int(ok)} passed, {int(not ok)} failed", flush=True)
    return 0 if ok else rc


if __name__ == "__main__":
    sys.exit(main())
