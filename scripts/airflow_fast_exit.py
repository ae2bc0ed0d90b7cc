"""Run one ``airflow`` CLI command in this process, then exit without the interpreter's teardown.

``make run`` uses it for ``airflow dags test``: once the command has returned, the run's state is in the
metadata DB and its logs are flushed, yet a normal interpreter exit still spends seconds joining threads
and finalising modules (TensorFlow, the in-process API server). Usage: ``python airflow_fast_exit.py dags
test turkey_training --conf '{}'`` -- the same arguments as ``airflow``; the exit status is the command's.
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


if __name__ == "__main__":
    status = main(sys.argv[1:])
    logging.shutdown()  # flush and close every log handler (task log files included)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
