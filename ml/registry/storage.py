"""Where the registry's files are and how one file is written: :class:`Storage`, which
:class:`ml.registry.Registry` holds.

Paths come in two forms: *fs paths* (``storage.fs``'s own, from :meth:`Storage.path`) for reading and
writing, and *display* paths (plain for local files, a URL for object stores; :meth:`Storage.display`) for
people. Single files are written whole or not at all: on a local (or mounted shared) filesystem to a
temporary name that is then renamed into place; on an object store by one PUT (readers see the old or the
new object, never a part).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import shutil
import time

from ml.fsutil import atomic_output, environment_errors

log = logging.getLogger(__name__)


def sha256_stream(fh) -> str:
    """Hex sha256 of an open binary file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path) -> str:
    """Hex sha256 of a local file, read in 1 MiB blocks."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


def tmp_suffix() -> str:
    """A suffix for temporary names unique to this process and moment."""
    return f"tmp-{os.getpid()}-{time.monotonic_ns()}"


def json_bytes(obj, indent: int | None = 2) -> bytes:
    """``obj`` as sorted-key JSON with a trailing newline, encoded (``indent=None``: one line)."""
    return (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode()


class Storage:
    """A registry root: a local path or any fsspec URL (e.g. ``s3://bucket/turkey`` with s3fs installed)."""

    def __init__(self, url: str):
        import fsspec

        self.url = str(url)
        self.fs, base = fsspec.core.url_to_fs(self.url)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols
        self.base = base.rstrip("/") or "/"

    def path(self, *parts: str) -> str:
        """The fs path of ``parts`` under the root."""
        return posixpath.join(self.base, *parts)

    def display(self, path: str) -> str:
        """A path people can open: plain for local files, a URL for object stores."""
        return path if self.local else self.fs.unstrip_protocol(path)

    def isfile(self, path: str) -> bool:
        """Whether the fs path ``path`` is a file."""
        return self.fs.isfile(path)

    def isdir(self, path: str) -> bool:
        """Whether the fs path ``path`` is a folder."""
        return self.fs.isdir(path)

    def names(self, folder: str) -> list[str]:
        """The entries of ``folder`` as base names (none when it does not exist)."""
        if not self.fs.isdir(folder):
            return []
        return [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(folder, detail=False)]

    def read_json(self, path: str):
        """The JSON document at ``path``."""
        with self.fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def read_bytes(self, path: str) -> bytes:
        """The bytes of the file at ``path``."""
        return self.fs.cat_file(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` whole or not at all (temporary file + rename locally; one PUT remotely)."""
        with environment_errors(self.display(path)):
            if self.local:
                with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                self.fs.pipe_file(path, data)

    def put_file(self, local_path, path: str) -> None:
        """Copy the local file ``local_path`` to ``path``, appearing whole."""
        with environment_errors(self.display(path)):
            if self.local:
                with atomic_output(path) as tmp:
                    shutil.copyfile(local_path, tmp)
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
            else:
                self.fs.put_file(str(local_path), path)

    def copy(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` inside the root, ``dst`` appearing whole."""
        if self.local:
            self.put_file(src, dst)
        else:
            with environment_errors(self.display(dst)):
                self.fs.copy(src, dst)  # server-side copy: the new object appears whole

    def sha256(self, path: str) -> str:
        """Hex sha256 of the file at ``path``."""
        if self.local:
            return sha256_file(path)
        with self.fs.open(path, "rb") as fh:
            return sha256_stream(fh)

    def remove(self, path: str) -> None:
        """Delete the file at ``path``; already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.unlink(path)
            else:
                self.fs.rm_file(path)

    def remove_tree(self, path: str) -> None:
        """Delete the folder ``path`` and everything in it; already gone is fine."""
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                shutil.rmtree(path)
            else:
                self.fs.rm(path, recursive=True)

    def mtime(self, path: str) -> float | None:
        """When ``path`` was last modified (seconds since the epoch), None when unknown or gone."""
        from datetime import datetime

        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
        return mtime.timestamp() if isinstance(mtime, datetime) else (float(mtime) if mtime is not None else None)
