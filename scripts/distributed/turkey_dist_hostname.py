"""``[core] hostname_callable`` for the distributed test: several workers on one machine, told apart.

Airflow records ``socket.getfqdn()`` as a task instance's hostname, which is the same for every process
on one machine. ``scripts/distributed_test.sh`` starts each Celery worker with ``TURKEY_WORKER_HOSTNAME``
set (the same name it passes as ``--celery-hostname``) and
``AIRFLOW__CORE__HOSTNAME_CALLABLE=turkey_dist_hostname.worker_hostname``, so the REST API shows which
worker ran each task. In docker compose every worker is its own container: not needed there.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("TURKEY_WORKER_HOSTNAME") or socket.getfqdn()
