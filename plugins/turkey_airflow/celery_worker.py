"""Celery configuration for the turkey workers: Airflow's defaults, plus imports warmed before tasks fork.

On Linux every task process of a Celery worker is forked, not started afresh: Celery's prefork pool forks
its pool processes from the worker, and Airflow's supervisor forks each task runner from a pool process.
A module the worker imported once is therefore already imported in every task process it runs. The
``validate`` task pays the Great Expectations import in each run otherwise (2-3 s here: "GX import +
context start-up" in BENCHMARKS.md section 2).

Deployments point ``[celery] celery_config_options`` at :data:`CELERY_CONFIG`
(``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=turkey_airflow.celery_worker.CELERY_CONFIG``, set in
``docker-compose.yaml`` and ``scripts/distributed/topology.py``). Loading this module (the worker, the
scheduler and the API server load the Celery config) only connects :func:`warm_imports` to Celery's
``worker_init`` signal, which fires in a worker's main process before it starts its pool; nothing is
imported anywhere else.

TensorFlow is deliberately not warmed: its runtime is not fork-safe once initialised, and the ``train``
task should start it in its own process.
"""

from __future__ import annotations

import importlib
import logging
import time

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

log = logging.getLogger(__name__)

#: Airflow's own Celery configuration, unchanged.
CELERY_CONFIG = DEFAULT_CELERY_CONFIG

#: Modules a worker imports before it forks: only pure-Python/NumPy stacks that survive a fork.
WARM_IMPORTS = ("great_expectations",)


def warm_imports(**_signal_kwargs) -> None:
    """Import :data:`WARM_IMPORTS` in this process, with the library environment set first
    (:func:`ml.settings.set_library_environment`: e.g. no GX analytics). A module that fails to import is
    logged and skipped: the task that needs it will import it (and fail) itself, with its own error."""
    from ml.settings import set_library_environment

    set_library_environment()
    for name in WARM_IMPORTS:
        t0 = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- a warm-up must never stop the worker
            log.warning("turkey worker: could not pre-import %s (%s); tasks will import it themselves", name, exc)
            continue
        log.info("turkey worker: pre-imported %s in %.1f s", name, time.perf_counter() - t0)


def _connect() -> None:
    from celery.signals import worker_init

    worker_init.connect(warm_imports, weak=False)


_connect()
