"""The registry lock that serialises promotions, and :class:`ml.errors.RegistryBusy` when it stays taken.

On a local or shared filesystem the lock is ``flock`` on ``.registry.lock`` (:class:`FileLock`; released by
the kernel when the holder dies, so a SIGKILLed promoter never leaves a stale lock; on NFS, Linux maps flock
to NFS byte-range locks). On an object store the lock is an object created with a conditional write
(:class:`ObjectLock`; fsspec ``mode="xb"``: S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, where the
backend implements it); a lock older than ``TURKEY_REGISTRY_LOCK_STALE_S`` (default 600 s) is taken to be
left by a dead holder and broken. If the backend cannot create objects exclusively, the registry falls back
to check-then-create, which does NOT exclude two promoters racing within one round trip: run promoters on
such a store one at a time (``max_active_runs=1`` and no manual promote during a run) or take an external
lock. Releasing the lock, and breaking a stale one, re-read the lock object and delete it only if it still
carries the token seen (so a holder whose lock was broken never deletes the next holder's); without a
conditional delete in fsspec a narrow window between that re-read and the delete remains. Waiting for the
lock is bounded by ``TURKEY_REGISTRY_LOCK_TIMEOUT_S`` (default 120 s); then :class:`ml.errors.RegistryBusy`
says the registry is busy (Airflow tasks retry it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
import uuid

from ml.errors import RegistryBusy
from ml.fsutil import environment_errors

log = logging.getLogger(__name__)


class FileLock:
    """Exclusive ``flock`` on a lock file, waiting at most ``timeout`` seconds."""

    def __init__(self, path: str, timeout: float):
        self.path, self.timeout, self.fd = path, timeout, None

    def __enter__(self):
        import fcntl

        with environment_errors(self.path):
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o664)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise RegistryBusy(
                    f"the registry is busy: another promotion has held {self.path} for over {self.timeout:.0f}s; "
                    "retry later (a crashed holder releases it automatically)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


class ObjectLock:
    """A lock object created with a conditional write (``mode="xb"``); stale ones are broken."""

    def __init__(self, fs, path: str, display: str, timeout: float, stale_after: float):
        self.fs, self.path, self.display = fs, path, display
        self.timeout, self.stale_after = timeout, stale_after
        self.token = uuid.uuid4().hex

    def _try_create(self) -> bool:
        body = json.dumps({"token": self.token, "pid": os.getpid(), "at": time.time()}).encode()
        try:
            with self.fs.open(self.path, "xb") as fh:
                fh.write(body)
            return True
        except FileExistsError:
            return False
        except (NotImplementedError, ValueError, TypeError):  # no exclusive create: best effort, see docstring
            if self.fs.exists(self.path):
                return False
            self.fs.pipe_file(self.path, body)
            return True

    def _holder(self) -> dict:
        """The lock object's body (``token``, ``pid``, ``at``); {} when it vanished or is half-visible."""
        try:
            body = json.loads(self.fs.cat_file(self.path))
        except Exception:  # noqa: BLE001 - vanished or half-visible: treated as not ours / not stale
            return {}
        return body if isinstance(body, dict) else {}

    def _remove_if_held_by(self, token) -> None:
        """Delete the lock object only if it still carries ``token``. Without a conditional delete in fsspec,
        another holder can still slip in between this re-read and the delete: a narrow race window that a
        backend with conditional deletes (or an external lock) closes."""
        if token is not None and self._holder().get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path)

    def __enter__(self):
        deadline = time.monotonic() + self.timeout
        while not self._try_create():
            holder = self._holder()
            held_since = holder.get("at", time.time())
            if time.time() - held_since > self.stale_after:
                log.warning("breaking stale registry lock %s (held since %s)", self.display, held_since)
                self._remove_if_held_by(holder.get("token"))  # not a fresh lock another waiter just took
                continue
            if time.monotonic() >= deadline:
                raise RegistryBusy(
                    f"the registry is busy: another promotion has held {self.display} for over {self.timeout:.0f}s; "
                    "retry later"
                )
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self._remove_if_held_by(self.token)  # if ours was broken as stale, the next holder's lock stays
