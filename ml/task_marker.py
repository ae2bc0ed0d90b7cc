"""The task-body log lines: written by the Airflow glue around each task body, read back by the bench.

Each ``turkey_training`` task body runs inside :func:`task_body`, which logs two lines under this module's
logger (``ml.task_marker``)::

    turkey task train: body started
    turkey task train: body finished in 12.345 s, peak RSS 812 MiB, largest child 0 MiB

(``failed`` instead of ``finished`` when the body raised). The seconds are the body's own wall time
(``time.perf_counter``); the peak RSS is the task process's high-water mark (``getrusage``
``ru_maxrss``), so under ``airflow dags test``, where every task runs in one process, it is the peak of
that process so far, not of the task alone. *largest child* is the peak RSS of the largest child process
the task process has waited for (``RUSAGE_CHILDREN``: the fast reader's parse workers), 0 if none. ``bench/`` finds these lines with :data:`PATTERN` and fails
loudly when a task has none, so the bench never books a body it could not see as Airflow overhead.

The module imports nothing from Airflow (``ml`` never does); the format lives here and nowhere else.
"""

from __future__ import annotations

import logging
import re
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

STARTED = "turkey task {task}: body started"
ENDED = (
    "turkey task {task}: body {outcome} in {seconds:.3f} s, peak RSS {rss_mib:.0f} MiB, "
    "largest child {child_rss_mib:.0f} MiB"
)
PATTERN = re.compile(
    r"turkey task (?P<task>[\w.\-]+): body (?P<event>started|finished|failed)"
    r"(?: in (?P<seconds>\d+(?:\.\d+)?) s, peak RSS (?P<rss_mib>\d+) MiB"
    r"(?:, largest child (?P<child_rss_mib>\d+) MiB)?)?"
)


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """This process's peak resident set size so far (with ``resource.RUSAGE_CHILDREN``: that of its largest
    waited-for child process), in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@contextmanager
def task_body(task_id: str) -> Iterator[None]:
    """Log the start and the end (finished or failed, seconds, peak RSS) of one task body around the block."""
    log.info(STARTED.format(task=task_id))
    t0 = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "finished"
    finally:
        log.info(
            ENDED.format(
                task=task_id,
                outcome=outcome,
                seconds=time.perf_counter() - t0,
                rss_mib=peak_rss_mib(),
                child_rss_mib=peak_rss_mib(resource.RUSAGE_CHILDREN),
            )
        )


def parse(line: str) -> dict | None:
    """The marker in one log line as ``{task, event, seconds, rss_mib, child_rss_mib}`` (the last three None
    for a start), or None."""
    m = PATTERN.search(line)
    if not m:
        return None
    seconds, rss, child = m.group("seconds"), m.group("rss_mib"), m.group("child_rss_mib")
    return {
        "task": m.group("task"),
        "event": m.group("event"),
        "seconds": float(seconds) if seconds is not None else None,
        "rss_mib": float(rss) if rss is not None else None,
        "child_rss_mib": float(child) if child is not None else None,
    }
