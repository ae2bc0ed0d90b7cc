"""The model registry: versioned, immutable model folders, a champion pointer, decisions and an audit log.

One class, :class:`Registry`, built from the modules of this package:

- :mod:`ml.registry.core` -- :class:`Registry`: the layout, reading versions, the champion pointer, the
  audit log and the human decisions in it, registering versions;
- :mod:`ml.registry.transaction` -- promote, rollback and repair as one serialised transaction with a
  write-ahead intent and roll-forward after a crash; recorded rejections;
- :mod:`ml.registry.doctor` -- checks and repairs (``turkey models doctor [--repair]``), orphan removal;
- :mod:`ml.registry.lock` -- the registry lock (``flock`` or a conditionally created object) and
  :class:`ml.errors.RegistryBusy`;
- :mod:`ml.registry.store` -- paths (one place builds a version's path: :meth:`Registry.version_path`) and
  atomic single-file writes;
- :mod:`ml.registry.common` -- the version file list, audit actions, file names, version names, hashing.

Everything other modules import from ``ml.registry`` is re-exported here.
"""

from ml.registry.common import (
    INTENT_NAME,
    LOCK_NAME,
    POINTER_ACTIONS,
    REPAIR_HINT,
    VERSION_FILES,
    make_version,
    now_iso,
    sha256_file,
)
from ml.registry.core import Registry

__all__ = [
    "INTENT_NAME",
    "LOCK_NAME",
    "POINTER_ACTIONS",
    "REPAIR_HINT",
    "VERSION_FILES",
    "Registry",
    "make_version",
    "now_iso",
    "sha256_file",
]
