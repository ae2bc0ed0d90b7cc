"""pytest wrapper around ``scripts/distributed_test.sh`` (CeleryExecutor on PostgreSQL + Redis; the driver is
``scripts/distributed/driver.py``).

Skipped unless TURKEY_DISTRIBUTED=1: the default suite needs neither service. CI runs the script
directly with ``make test-distributed``; this wrapper is for ``TURKEY_DISTRIBUTED=1 pytest -m distributed``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support import REPO

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("TURKEY_DISTRIBUTED") != "1",
                       reason="needs PostgreSQL and Redis: make test-distributed (or TURKEY_DISTRIBUTED=1)"),
]


def test_training_dag_on_celery_workers():
    proc = subprocess.run(["bash", str(REPO / "scripts" / "distributed_test.sh")], capture_output=True, text=True,
                          timeout=900)
    print(proc.stdout[-6000:])
    print(proc.stderr[-3000:])
    assert proc.returncode == 0
    assert proc.stdout.rstrip().splitlines()[-1] == "distributed: 1 passed, 0 failed"
