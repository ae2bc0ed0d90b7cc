"""Run ``airflow`` CLI commands in this process, one after the other, then exit without the interpreter's
teardown.

``make run`` and ``make score`` use it for ``airflow db migrate`` and ``airflow dags test``: one Airflow
import for both, and once the run has returned its state is in the metadata DB and its logs are flushed,
yet a normal interpreter exit still spends seconds joining threads and finalising modules (the in-process
API server). Usage: ``python airflow_fast_exit.py db migrate ::: dags test turkey_training --conf '{}'``
-- each command the arguments of ``airflow``, separated by ``:::``; it stops at the first command that
fails, and the exit status is that command's (else 0).
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str]) -> int:
    """Run ``airflow <argv>`` in-process and return its exit status."""
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *argv]
    try:
        airflow_main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def stop_listeners() -> None:
    """Give Airflow's listeners their ``before_stopping`` call, which a fast exit would skip: the OpenLineage
    provider's listener shuts down the process pool that sends DAG-run events (left running, its worker
    outlives this process and holds the caller's output pipe open). Nothing when no listener is loaded."""
    listener = sys.modules.get("airflow.listeners.listener")
    if listener is None:
        return
    try:
        if not listener.get_listener_manager.cache_info().currsize:
            return  # never asked for (e.g. `airflow version`): loading the plugins now would only cost
        manager = listener.get_listener_manager()
        if manager.has_listeners:
            manager.hook.before_stopping(component=None)
    except Exception as exc:  # noqa: BLE001 - exiting anyway; say why the pool may linger
        print(f"warning: Airflow listeners not stopped: {exc}", file=sys.stderr)


def main_all(argv: list[str]) -> int:
    """Run each ``:::``-separated command of ``argv`` with :func:`main`; the first non-zero status, else 0."""
    command: list[str] = []
    for arg in [*argv, ":::"]:
        if arg != ":::":
            command.append(arg)
            continue
        if command and (status := main(command)):
            return status
        command = []
    return 0


if __name__ == "__main__":
    status = main_all(sys.argv[1:])
    stop_listeners()
    logging.shutdown()  # flush and close every log handler (task log files included)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
