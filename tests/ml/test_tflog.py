from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO


def test_tensorflow_start_up_lines_are_logged_at_info_not_on_stderr():
    probe = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout, "
             "format='%(levelname)s %(name)s %(message)s'); from ml.tflog import import_tensorflow; "
             "import_tensorflow()")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip() == "", out.stderr
    assert all(line.startswith("INFO ml.tflog") for line in out.stdout.splitlines() if line.strip())
