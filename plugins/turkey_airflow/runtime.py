"""What a task process needs before a task body runs: set up when the body starts, never at import.

Importing the glue (the DAG processor parses ``dags/`` with it) changes nothing; :func:`setup_task_process`
is called by the task wrappers (``turkey_airflow.tasks``) and the other task bodies when they run.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

#: Loggers whose INFO lines a task log must show (epochs, gate decisions; the e2e tests read them): the ``ml``
#: library and this glue package.
INFO_LOGGERS = ("ml", __name__.split(".")[0])


def setup_task_process() -> None:
    """Set the library environment defaults (:func:`ml.settings.set_library_environment`) and let the
    :data:`INFO_LOGGERS` log at INFO (a logger configured to a level of its own is left alone).
    Idempotent; call it at the start of a task body."""
    from ml.settings import set_library_environment

    set_library_environment()
    for name in INFO_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def worker_hostname() -> str:
    """A ``[core] hostname_callable``: ``TURKEY_WORKER_HOSTNAME``, else the machine's name. Several Celery
    workers on one machine (the distributed test) set it so task instances record which worker ran them;
    in docker compose every worker is its own container and needs nothing."""
    return os.environ.get("TURKEY_WORKER_HOSTNAME") or socket.getfqdn()
