"""Import TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes a few lines while it loads (``All log messages before
absl::InitializeLog() is called are written to STDERR``, ``oneDNN custom operations are on ...``)
straight to file descriptor 2, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect. An Airflow task logs
everything on stderr at ERROR, so a healthy ``train`` task looked like it had errors. :func:`import_tensorflow`
loads TensorFlow with fd 2 redirected to a temporary file and re-logs those lines at INFO on the
``ml.tflog`` logger; anything TensorFlow writes later goes to stderr as usual.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from ml.settings import set_library_environment

log = logging.getLogger(__name__)


def import_tensorflow():
    """Import (once per process) and return the ``tensorflow`` module, its start-up lines logged at INFO."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    set_library_environment()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines()
    for line in lines:
        if line.strip():
            log.info("tensorflow start-up: %s", line.strip())
    return tensorflow
