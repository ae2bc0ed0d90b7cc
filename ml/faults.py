"""Test-only fault injection: kill this process at a named step, to prove crash safety.

``TURKEY_FAULT_INJECT`` (a comma-separated list of ``<step>`` names, e.g.
``promote:after_latest_csv``) makes :func:`fault_point` send SIGKILL to its own process when that step is
reached, exactly as an OOM kill or a lost node would. It is read on every call, so a test sets it only in
the environment of the subprocess it means to kill. Unset (production), :func:`fault_point` is a dictionary
lookup that does nothing. Steps are listed in :data:`STEPS` so the fault suite can iterate over all of them.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "TURKEY_FAULT_INJECT"

STEPS = (
    # ml.registry.Registry.register
    "register:after_copy",  # files copied into the temporary folder, manifest not yet written
    "register:before_commit",  # temporary folder complete, not yet renamed into place
    # ml.registry.Registry.promote / rollback (one transaction; see the registry's docstring)
    "promote:after_lock",  # lock held, nothing written
    "promote:after_intent",  # intent record written
    "promote:after_versioned_csv",  # submissions/<version>.csv written
    "promote:after_latest_csv",  # submissions/latest.csv written, pointer still old
    "promote:after_pointer",  # champion.json written, audit entry not yet
    "promote:after_audit",  # audit entry written, intent not yet cleared
)


def fault_point(step: str) -> None:
    """SIGKILL this process if ``step`` is named in ``$TURKEY_FAULT_INJECT`` (test-only; off by default)."""
    wanted = os.environ.get(ENV)
    if wanted and step in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
