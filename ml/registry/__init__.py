"""The model registry: versioned, immutable model folders, a champion pointer, decisions and an audit log.

- :mod:`ml.registry.registry` -- :class:`Registry`, the one class: layout, reading, registering, and
  promote/rollback/repair as one serialised transaction;
- :mod:`ml.registry.storage` -- :class:`~ml.registry.storage.Storage`: paths and atomic single-file I/O on
  a local folder or any fsspec URL;
- :mod:`ml.registry.lock` -- the lock that serialises promotions;
- :mod:`ml.registry.doctor` -- checks and repairs (``turkey models doctor``), orphan removal;
- :mod:`ml.registry.views` -- what people are shown: a version described, one row per version.
"""

from ml.registry.registry import (
    INTENT_NAME,
    LOCK_NAME,
    POINTER_ACTIONS,
    REPAIR_HINT,
    VERSION_FILES,
    Registry,
    now_iso,
)
from ml.registry.storage import sha256_file

__all__ = ["INTENT_NAME", "LOCK_NAME", "POINTER_ACTIONS", "REPAIR_HINT", "VERSION_FILES", "Registry", "now_iso",
           "sha256_file"]
