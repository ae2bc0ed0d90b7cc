"""Where the registry's files are and how one file is written: :class:`RegistryStore`, the base of
:class:`ml.registry.Registry`.

Atomicity of single files: on a local (or mounted shared) filesystem every file is written to a temporary
name and renamed into place. On an object store each object is written by one PUT (readers see the old or
the new object, never a part).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil

from ml.config import artifacts_root, safe_name
from ml.fsutil import atomic_output, environment_errors
from ml.registry.common import sha256_file, sha256_stream

log = logging.getLogger(__name__)


class RegistryStore:
    """The registry root (a local path or any fsspec URL; default: ``TURKEY_REGISTRY_URL``, else the
    artifacts root): its paths, and reading and writing one file atomically. Paths come in two forms:
    *fs paths* (``self.fs``'s own, e.g. :meth:`version_path`) for reading and writing, and *display* paths
    (plain for local files, a URL for object stores; the properties and ``*_dir``/``*_path`` methods) for
    people."""

    def __init__(self, root=None):
        import fsspec

        url = str(root) if root is not None else os.environ.get("TURKEY_REGISTRY_URL") or str(artifacts_root())
        self.fs, base = fsspec.core.url_to_fs(url)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.base = base.rstrip("/") or "/"
        self.url = url

    # ------------------------------------------------------------------ paths
    def _p(self, *parts: str) -> str:
        """The fs path of ``parts`` under the registry root."""
        return posixpath.join(self.base, *parts)

    def version_path(self, version: str, *names: str) -> str:
        """The fs path (for ``self.fs``) of ``version``'s folder, or of the file ``names`` inside it; the one
        place a version's location is built (``version`` is made file-system-safe)."""
        return self._p("models", safe_name(version), *names)

    def display(self, path: str) -> str:
        """A path users can open: plain for local files, a URL for object stores."""
        return path if self.local else self.fs.unstrip_protocol(path)

    @property
    def root(self) -> str:
        """The registry root, as a path or URL."""
        return self.display(self.base)

    @property
    def models(self) -> str:
        """The folder holding one sub-folder per version."""
        return self.display(self._p("models"))

    @property
    def submissions(self) -> str:
        """The folder holding ``latest.csv`` and one CSV per promoted version."""
        return self.display(self._p("submissions"))

    @property
    def audit_dir(self) -> str:
        """The append-only audit folder (one JSON object per entry)."""
        return self.display(self._p("audit"))

    @property
    def pointer_path(self) -> str:
        """``champion.json``, the champion pointer."""
        return self.display(self._p("champion.json"))

    def version_dir(self, version: str) -> str:
        """The folder of ``version`` (whether or not it exists), as a display path."""
        return self.display(self.version_path(version))

    def _submission_file(self, version: str | None = None) -> str:
        """The fs path of ``submissions/<version>.csv``, or of ``submissions/latest.csv`` without a version."""
        return self._p("submissions", f"{safe_name(version)}.csv" if version else "latest.csv")

    def submission_path(self, version: str | None = None) -> str:
        """``submissions/<version>.csv``, or ``submissions/latest.csv`` when no version is given."""
        return self.display(self._submission_file(version))

    # ------------------------------------------------------------------ low-level I/O
    def _read_json(self, path: str):
        """The JSON document at fs path ``path``."""
        with self.fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def _write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` whole or not at all (temporary file + rename locally; one PUT remotely)."""
        with environment_errors(self.display(path)):
            if self.local:
                with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                self.fs.pipe_file(path, data)  # one PUT

    def _copy_within(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` inside the registry, ``dst`` appearing whole."""
        with environment_errors(self.display(dst)):
            if self.local:
                with atomic_output(dst) as tmp:
                    shutil.copyfile(src, tmp)
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
            else:
                self.fs.copy(src, dst)  # server-side copy: the new object appears whole

    def _sha256(self, path: str) -> str:
        """Hex sha256 of the file at fs path ``path``."""
        if self.local:
            return sha256_file(path)
        with self.fs.open(path, "rb") as fh:
            return sha256_stream(fh)

    def _remove(self, path: str) -> None:
        """Delete the file at ``path``; already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.unlink(path)
            else:
                self.fs.rm_file(path)
