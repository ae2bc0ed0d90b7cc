"""``[core] hostname_callable`` for the distributed test: several workers on one machine, told apart.

Airflow records ``socket.getfqdn()`` as a task instance's hostname, which is the same for every process
on one machine. :mod:`scripts.distributed.topology` starts each Celery worker with ``TURKEY_WORKER_HOSTNAME``
set (the same name it passes as ``--celery-hostname``) and
``AIRFLOW__CORE__HOSTNAME_CALLABLE=turkey_dist_hostname.worker_hostname`` (this folder on the worker's
PYTHONPATH), so the REST API shows which worker ran each task. In docker compose every worker is its own container: not needed there.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def worker_hostname() -> str:
    """The worker's name from TURKEY_WORKER_HOSTNAME, else the machine's."""
    return os.environ.get("TURKEY_WORKER_HOSTNAME") or socket.getfqdn()
