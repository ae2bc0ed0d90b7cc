"""The model registry: versioned, immutable model folders, a champion pointer and submissions.

Layout under the registry root (the artifacts root by default; ``TURKEY_REGISTRY_URL`` may name any
fsspec URL instead, e.g. ``s3://bucket/turkey`` with s3fs installed)::

    models/<version>/          immutable once written: model.keras, metrics.json, history.json,
                               curves.png, submission.csv, manifest.json (written last; holds the
                               sha256 and size of every other file)
    champion.json              pointer to the live version
    submissions/<version>.csv  scored submission of each promoted version
    submissions/latest.csv     the champion's submission
    audit/<time>-<id>.json     append-only: one object per pointer change (promote, rollback, repair)
                               or recorded decision (rejected)
    .registry.lock             serialises promotions (see "Promotion" below)
    .promotion-intent.json     present only while a promotion is unfinished (write-ahead record)

Atomicity of single files: on a local (or mounted shared) filesystem every file is written to a
temporary name and renamed into place, and a version folder appears by renaming a complete temporary
folder. On an object store each object is written by one PUT (readers see the old or the new object,
never a part), and a version counts as published only once its ``manifest.json`` -- uploaded last --
exists. An existing version is never rewritten, so retried or cleared tasks of the same run are
idempotent.

Promotion (promote, rollback, repair) is one serialised transaction over several files:

1. take the registry lock; finish any unfinished earlier promotion (roll forward, see 3.);
2. read the current pointer (``previous``; compare-and-set when the caller passes ``expect_previous``)
   and write the *intent* ``.promotion-intent.json``: target version, previous, a promotion id, the
   exact pointer and audit entry to write. From here on the promotion is decided;
3. copy ``submissions/<version>.csv`` and ``submissions/latest.csv``, write ``champion.json``, write the
   audit entry under a name derived from the promotion id (so it is written exactly once however often
   this step is replayed), then delete the intent; release the lock.

A crash anywhere in 3. leaves the intent behind; the next promotion, ``turkey models doctor --repair``
or any reader that can take the lock replays 3. from the intent (every step is idempotent), and until
then :meth:`Registry.champion` reports the intent's pointer, so readers of this API never see the
pointer and the audit disagree. A crash before the intent exists changes nothing. Invariant after any
interleaving of promoters and crashes, once recovered: ``champion.json``'s version == the content of
``submissions/latest.csv`` (that version's submission) == the last pointer-changing audit entry's
version, and each audit entry's ``previous`` is the version of the one before it (no lost update).

Locking: on a local or shared filesystem the lock is ``flock`` on ``.registry.lock`` (released by the
kernel when the holder dies, so a SIGKILLed promoter never leaves a stale lock; on NFS, Linux maps
flock to NFS byte-range locks). On an object store the lock is an object created with a conditional
write (fsspec ``mode="xb"``: S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``, where the backend
implements it); a lock older than ``TURKEY_REGISTRY_LOCK_STALE_S`` (default 600 s) is taken to be left
by a dead holder and broken. If the backend cannot create objects exclusively, the registry falls back
to check-then-create, which does NOT exclude two promoters racing within one round trip: run promoters
on such a store one at a time (``max_active_runs=1`` and no manual promote during a run) or take an
external lock. Releasing the lock, and breaking a stale one, re-read the lock object and delete it only
if it still carries the token seen (so a holder whose lock was broken never deletes the next holder's);
without a conditional delete in fsspec a narrow window between that re-read and the delete remains. A
version's files are hashed before the lock is taken (versions are immutable), so a slow download does
not hold the lock. Waiting for the lock is bounded by ``TURKEY_REGISTRY_LOCK_TIMEOUT_S`` (default
120 s); then :class:`ml.errors.RegistryBusy` says the registry is busy (Airflow tasks retry it).

Damage: a pointer that exists but cannot be read, or names a missing or incomplete version, raises
:class:`ml.errors.RegistryDamaged` naming the file and ``turkey models doctor --repair`` -- never "no
champion". :meth:`Registry.doctor` checks everything (pointer, latest.csv, every version against its
manifest hashes, the audit chain, unfinished promotions, orphaned temporary files) and repairs what can
be repaired safely, each repair audited.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import posixpath
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ml.config import artifacts_root, safe_name
from ml.errors import EnvironmentFault, RegistryBusy, RegistryDamaged, RegistryError, TurkeyError
from ml.faults import fault_point
from ml.fsutil import TMP_PREFIX, atomic_output, environment_errors, fsync_dir

log = logging.getLogger("ml.registry")

# The files every new version folder holds besides manifest.json (the single list: register copies these,
# the manifest records their hashes). A version registered before a file was added here stays valid: its
# completeness is judged by its own manifest's file list.
VERSION_FILES = ("model.keras", "metrics.json", "history.json", "curves.png", "submission.csv", "record_ids.json")
# Checked for versions whose manifest predates per-file hashes.
_LEGACY_REQUIRED = ("model.keras", "submission.csv")

POINTER_ACTIONS = ("promote", "rollback", "repair")  # audit actions that move (or rewrite) champion.json
LOCK_NAME = ".registry.lock"
INTENT_NAME = ".promotion-intent.json"
REPAIR_HINT = "turkey models doctor --repair"
_ANY = object()


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_version(run_started_at: datetime | str, dag_id: str, run_id: str) -> str:
    """Deterministic per DAG run (so retries map to the same version), sortable by creation time."""
    if isinstance(run_started_at, str):
        run_started_at = datetime.fromisoformat(run_started_at.replace("Z", "+00:00"))
    if run_started_at.tzinfo is None:
        run_started_at = run_started_at.replace(tzinfo=UTC)
    stamp = run_started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha1(f"{dag_id}/{run_id}".encode()).hexdigest()[:8]
    return f"v{stamp}-{digest}"


def sha256_file(path) -> str:
    """Hex sha256 of a local file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tmp_suffix() -> str:
    return f"tmp-{os.getpid()}-{time.monotonic_ns()}"


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _json_bytes(obj, indent: int | None = 2) -> bytes:
    return (json.dumps(obj, indent=indent, sort_keys=True) + "\n").encode()


class _FileLock:
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


class _ObjectLock:
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


class Registry:
    """The model registry at ``root`` (a local path or any fsspec URL; default: ``TURKEY_REGISTRY_URL``,
    else the artifacts root). See the module docstring for the layout and the guarantees."""

    def __init__(self, root=None):
        import fsspec

        url = str(root) if root is not None else os.environ.get("TURKEY_REGISTRY_URL") or str(artifacts_root())
        self.fs, base = fsspec.core.url_to_fs(url)
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self.base = base.rstrip("/") or "/"
        self.url = url

    # ------------------------------------------------------------------ paths
    def _p(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

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
        """The folder of ``version`` (whether or not it exists)."""
        return self.display(self._p("models", safe_name(version)))

    def submission_path(self, version: str | None = None) -> str:
        """``submissions/<version>.csv``, or ``submissions/latest.csv`` when no version is given."""
        return self.display(self._p("submissions", f"{safe_name(version)}.csv" if version else "latest.csv"))

    # ------------------------------------------------------------------ low-level I/O
    def _read_json(self, path: str):
        with self.fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def _write_bytes(self, path: str, data: bytes) -> None:
        with environment_errors(self.display(path)):
            if self.local:
                with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                self.fs.pipe_file(path, data)  # one PUT

    def _copy_within(self, src: str, dst: str) -> None:
        with environment_errors(self.display(dst)):
            if self.local:
                with atomic_output(dst) as tmp:
                    shutil.copyfile(src, tmp)
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
            else:
                self.fs.copy(src, dst)  # server-side copy: the new object appears whole

    def _sha256(self, path: str) -> str:
        if self.local:
            return sha256_file(path)
        h = hashlib.sha256()
        with self.fs.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def _remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.local:
                os.unlink(path)
            else:
                self.fs.rm_file(path)

    # ------------------------------------------------------------------ reading
    def versions(self) -> list[str]:
        """Published versions (those whose manifest exists), oldest first."""
        models = self._p("models")
        if not self.fs.isdir(models):
            return []
        out = []
        for entry in self.fs.ls(models, detail=False):
            name = posixpath.basename(entry.rstrip("/"))
            if not name.startswith(".") and self.fs.isfile(posixpath.join(models, name, "manifest.json")):
                out.append(name)
        return sorted(out)

    def manifest(self, version: str) -> dict:
        """The manifest of ``version``; ``RegistryError`` if there is no such version."""
        path = self._p("models", safe_name(version), "manifest.json")
        if not self.fs.isfile(path):
            raise RegistryError(f"no model version {version!r} in {self.models}")
        try:
            return self._read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryDamaged(self.display(path), f"unreadable manifest ({exc})") from None

    def missing_files(self, version: str) -> list[str]:
        """Files ``version``'s manifest lists (or, for old manifests, the essential ones) that are absent."""
        d = self._p("models", safe_name(version))
        man = self.manifest(version)
        names = sorted(man["files"]) if isinstance(man.get("files"), dict) else list(_LEGACY_REQUIRED)
        return [f for f in names if not self.fs.isfile(posixpath.join(d, f))]

    def _check_pointer(self, pointer) -> str:
        """The pointer's version if it names a complete version, else raise RegistryDamaged."""
        path = self.pointer_path
        if not isinstance(pointer, dict) or not isinstance(pointer.get("version"), str):
            raise RegistryDamaged(path, "not a champion pointer (no 'version')")
        version = pointer["version"]
        try:
            missing = self.missing_files(version)
        except RegistryDamaged:
            raise
        except TurkeyError:
            raise RegistryDamaged(path, f"names version {version!r}, which does not exist in {self.models}") from None
        if missing:
            raise RegistryDamaged(
                path, f"names version {version!r}, which is incomplete (missing {', '.join(missing)})"
            )
        return version

    def _read_pointer(self) -> dict | None:
        """champion.json, checked; None when there is none. RegistryDamaged when it is unusable."""
        path = self._p("champion.json")
        if not self.fs.isfile(path):
            return None
        try:
            pointer = self._read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryDamaged(self.display(path), f"unreadable ({type(exc).__name__}: {exc})") from None
        self._check_pointer(pointer)
        return pointer

    def _read_intent(self) -> dict | None:
        path = self._p(INTENT_NAME)
        if not self.fs.isfile(path):
            return None
        try:
            intent = self._read_json(path)
        except (ValueError, UnicodeDecodeError, FileNotFoundError):
            return None
        return intent if isinstance(intent, dict) and "pointer" in intent else None

    def champion(self) -> dict | None:
        """The champion pointer (``version``, ``promoted_at``, ``previous``, ``reason``, ...), or None when
        nothing was ever promoted.

        Raises :class:`~ml.errors.RegistryDamaged` when ``champion.json`` exists but is unreadable or names
        a missing or incomplete version. An unfinished promotion (crashed promoter) is finished first when
        the lock is free; if that is not possible (another promoter at work, read-only access) the
        decided promotion's pointer is returned.
        """
        intent = self._read_intent()
        if intent is not None:
            try:
                with self._locked(timeout=0):
                    self._roll_forward()
            except (RegistryBusy, EnvironmentFault) as exc:  # another promoter at work, or read-only access
                log.info("unfinished promotion %s not finished by this reader: %s", intent.get("id"), exc)
                return intent["pointer"]
        return self._read_pointer()

    def champion_version(self) -> str | None:
        """The champion's version, or None when nothing was ever promoted (RegistryDamaged when broken)."""
        c = self.champion()
        return c["version"] if c else None

    def resolve(self, ref: str) -> str:
        """A version name from ``ref``: a version, ``champion`` or ``latest`` (newest registered)."""
        if ref == "champion":
            v = self.champion_version()
            if v is None:
                raise RegistryError("there is no champion yet")
            return v
        if ref == "latest":
            vs = self.versions()
            if not vs:
                raise RegistryError("the registry has no versions yet")
            return vs[-1]
        self.manifest(ref)
        return ref

    def _audit_names(self) -> list[str]:
        d = self._p("audit")
        if not self.fs.isdir(d):
            return []
        return sorted(
            p for p in self.fs.ls(d, detail=False) if p.endswith(".json") and not posixpath.basename(p).startswith(".")
        )  # not temporaries

    def audit(self) -> list[dict]:
        """Every audit entry, oldest first (``action``, ``version``, ``previous``, ``reason``, ``at``, ...)."""
        out = []
        for p in self._audit_names():
            try:
                out.append(self._read_json(p))
            except (ValueError, UnicodeDecodeError) as exc:
                raise RegistryDamaged(self.display(p), f"unreadable audit entry ({exc})") from None
        return out

    def describe(self, ref: str) -> dict:
        """Paths, metrics and manifest of ``ref`` (a version, ``champion`` or ``latest``)."""
        version = self.resolve(ref)
        d = self._p("models", safe_name(version))
        metrics_path = posixpath.join(d, "metrics.json")
        return {
            "version": version,
            "is_champion": self.champion_version() == version,
            "model": self.display(posixpath.join(d, "model.keras")),
            "submission": self.display(posixpath.join(d, "submission.csv")),
            "curves": self.display(posixpath.join(d, "curves.png")),
            "metrics": self._read_json(metrics_path) if self.fs.isfile(metrics_path) else {},
            "manifest": self.manifest(version),
            "decisions": self.decisions(version),
        }

    @staticmethod
    def _decision(entry: dict) -> dict | None:
        """The human decision an audit entry records (an approved promotion or a rejection), if any."""
        approval = entry.get("approval")
        if not approval and entry.get("action") != "rejected":
            return None
        approval = approval or {}
        return {
            "decision": approval.get("decision") or ("rejected" if entry.get("action") == "rejected" else "approved"),
            "by": approval.get("by") or entry.get("user"),
            "at": approval.get("at") or entry.get("at"),
            "comment": approval.get("comment"),
            "run_id": entry.get("run_id"),
        }

    def decisions(self, version: str | None = None, audit: list[dict] | None = None) -> list[dict]:
        """Human approvals and rejections from the audit log (of ``version``, or all), oldest first."""
        out = []
        for entry in self.audit() if audit is None else audit:
            d = self._decision(entry)
            if d is not None and (version is None or entry.get("version") == version):
                out.append({"version": entry.get("version"), **d})
        return out

    def list(self) -> list[dict]:
        """One row per version, oldest first: figures, gate decision (``rejected`` once a human rejected
        it), the latest human ``decision`` (``{decision, by, at, comment}`` or None), ``ever_promoted``,
        ``champion``."""
        champ = self.champion_version()
        audit = self.audit()
        promoted = {e.get("version") for e in audit if e.get("action") in ("promote", "rollback")}
        decided = {d["version"]: d for d in self.decisions(audit=audit)}  # the latest per version
        rows = []
        for v in self.versions():
            man = self.manifest(v)
            m = man.get("metrics", {})
            rows.append(
                {
                    "version": v,
                    "created_at": man.get("created_at"),
                    "run_id": man.get("run_id"),
                    "val_accuracy": m.get("val_accuracy"),
                    "val_auc": m.get("val_auc"),
                    "gate": "rejected"
                    if decided.get(v, {}).get("decision") == "rejected"
                    else man.get("gate", {}).get("decision"),
                    "decision": decided.get(v),
                    "ever_promoted": v in promoted,
                    "champion": v == champ,
                }
            )
        return rows

    def fetch_model(self, version: str, dest_dir) -> str:
        """A local path to ``version``'s model.keras (downloaded when the registry is remote)."""
        src = self._p("models", safe_name(version), "model.keras")
        if self.local:
            return src
        dest = Path(dest_dir) / f"{safe_name(version)}.keras"
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(src, str(dest))
        return str(dest)

    # ------------------------------------------------------------------ registering
    def register(self, version: str, candidate_dir, manifest: dict) -> tuple[str, bool]:
        """Publish the local folder ``candidate_dir`` as ``models/<version>``. Returns (path, created).

        The manifest gets ``version``, ``created_at`` and ``files`` (sha256 and size of every file, as
        stored). Idempotent: if the version exists (a retried or cleared task of the same run), it is left
        as is. Disk full / read-only / permission errors raise EnvironmentFault and leave no partial
        version (a crash may leave a hidden temporary folder; ``doctor --repair`` removes it).
        """
        name = safe_name(version)
        dest = self._p("models", name)
        if self.fs.isfile(posixpath.join(dest, "manifest.json")):
            return self.display(dest), False
        candidate_dir = Path(candidate_dir)
        missing = [f for f in VERSION_FILES if not (candidate_dir / f).is_file()]
        if missing:
            raise TurkeyError(f"candidate {candidate_dir} is incomplete: missing {', '.join(missing)}")
        manifest = {**manifest, "version": version, "created_at": manifest.get("created_at") or now_iso()}
        with environment_errors(self.display(dest)):
            if not self.local:
                return self._register_remote(dest, candidate_dir, manifest)
            return self._register_local(name, dest, candidate_dir, manifest)

    @staticmethod
    def _file_entries(folder: Path) -> dict:
        return {f: {"sha256": sha256_file(folder / f), "bytes": (folder / f).stat().st_size} for f in VERSION_FILES}

    def _register_remote(self, dest: str, candidate_dir: Path, manifest: dict) -> tuple[str, bool]:
        files = self._file_entries(candidate_dir)
        for f in VERSION_FILES:
            self.fs.put_file(str(candidate_dir / f), posixpath.join(dest, f))
        fault_point("register:after_copy")
        fault_point("register:before_commit")
        self.fs.pipe_file(posixpath.join(dest, "manifest.json"), _json_bytes({**manifest, "files": files}))
        return self.display(dest), True

    def _register_local(self, name: str, dest: str, candidate_dir: Path, manifest: dict) -> tuple[str, bool]:
        models = Path(self.base) / "models"
        models.mkdir(parents=True, exist_ok=True)
        tmp = models / f".{name}.{_tmp_suffix()}"
        tmp.mkdir()
        try:
            for f in VERSION_FILES:
                shutil.copyfile(candidate_dir / f, tmp / f)
            fault_point("register:after_copy")
            files = self._file_entries(tmp)  # hashes of what is stored, not of the source
            (tmp / "manifest.json").write_bytes(_json_bytes({**manifest, "files": files}))
            for p in tmp.iterdir():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
                p.chmod(0o444)
            fsync_dir(tmp)
            fault_point("register:before_commit")
            try:
                os.rename(tmp, dest)  # atomic; fails if dest appeared meanwhile
            except OSError:
                if os.path.isfile(os.path.join(dest, "manifest.json")):
                    return dest, False
                raise
            fsync_dir(models)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest, True

    # ------------------------------------------------------------------ promotion transaction
    def _locked(self, timeout: float | None = None):
        """The registry lock (see the module docstring)."""
        if timeout is None:
            timeout = _env_float("TURKEY_REGISTRY_LOCK_TIMEOUT_S", 120.0)
        if self.local:
            return _FileLock(self._p(LOCK_NAME), timeout)
        return _ObjectLock(
            self.fs,
            self._p(LOCK_NAME),
            self.display(self._p(LOCK_NAME)),
            timeout,
            _env_float("TURKEY_REGISTRY_LOCK_STALE_S", 600.0),
        )

    def _next_audit_name(self, promotion_id: str) -> str:
        """``<UTC time>-<id>.json``, later in sort order than every existing entry (clocks may step back)."""
        stamp = datetime.now(UTC)
        names = self._audit_names()
        if names:
            last = posixpath.basename(names[-1]).split("-", 1)[0]
            with contextlib.suppress(ValueError):
                last_t = datetime.strptime(last, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
                if last_t >= stamp:
                    stamp = last_t.fromtimestamp(last_t.timestamp() + 1e-6, UTC)
        return f"{stamp.strftime('%Y%m%dT%H%M%S%fZ')}-{promotion_id}.json"

    def _last_pointer_entry(self) -> dict | None:
        for entry in reversed(self.audit()):
            if entry.get("action") in POINTER_ACTIONS:
                return entry
        return None

    def _current_for_update(self) -> tuple[str | None, str | None]:
        """(previous version, damage) under the lock. A damaged pointer's previous comes from the audit."""
        try:
            pointer = self._read_pointer()
            return (pointer["version"] if pointer else None), None
        except RegistryDamaged as exc:
            last = self._last_pointer_entry()
            return (last.get("version") if last else None), exc.problem

    def _apply(self, intent: dict) -> None:
        """Step 3 of the transaction: idempotent, replayed by roll-forward after a crash."""
        version = intent["version"]
        src = self._p("models", safe_name(version), "submission.csv")
        self._copy_within(src, self._p("submissions", f"{safe_name(version)}.csv"))
        fault_point("promote:after_versioned_csv")
        self._copy_within(src, self._p("submissions", "latest.csv"))
        fault_point("promote:after_latest_csv")
        self._write_bytes(self._p("champion.json"), _json_bytes(intent["pointer"]))
        fault_point("promote:after_pointer")
        audit_path = self._p("audit", intent["audit_name"])
        if not self.fs.isfile(audit_path):
            self._write_bytes(audit_path, _json_bytes(intent["audit"], indent=None))
        fault_point("promote:after_audit")
        self._remove(self._p(INTENT_NAME))

    def _roll_forward(self) -> dict | None:
        """Finish an unfinished promotion (call with the lock held). Returns its intent, or None."""
        path = self._p(INTENT_NAME)
        if not self.fs.isfile(path):
            return None
        intent = self._read_intent()
        if intent is None:  # cannot be produced by this code (atomic writes); damage from outside
            raise RegistryDamaged(self.display(path), "unreadable promotion intent", REPAIR_HINT)
        try:
            missing = self.missing_files(intent["version"])
            problem = f"missing {', '.join(missing)}" if missing else None
        except TurkeyError as exc:
            problem = str(exc)
        if problem:
            raise RegistryDamaged(
                self.display(path), f"unfinished promotion of {intent['version']!r} cannot finish ({problem})"
            )
        log.warning("finishing an interrupted promotion of %s (id %s)", intent["version"], intent["id"])
        self._apply(intent)
        return intent

    def recover(self) -> dict | None:
        """Finish an interrupted promotion, if any (takes the lock). Returns the finished intent or None."""
        with self._locked():
            return self._roll_forward()

    def promote(
        self,
        version: str,
        reason: str,
        action: str = "promote",
        *,
        approval: dict | None = None,
        expect_previous=_ANY,
        **details,
    ) -> dict:
        """Make ``version`` the champion in one serialised transaction; returns the new pointer.

        ``details`` (e.g. ``run_id``, ``force_promote``, ``user``) and ``approval`` (e.g. a human
        reviewer's ``{"by": ..., "decision": "approved", "at": ..., "comment": ...}``) are recorded in
        ``champion.json`` and the audit entry. ``expect_previous`` makes it a compare-and-set: the
        promotion is refused (RegistryError) unless the current champion is that version (None: no
        champion). A retried ``promote`` of the current champion changes nothing. A damaged pointer is
        replaced (this is the documented repair): ``previous`` is then taken from the audit log.
        """
        if approval is not None:
            details["approval"] = approval
        if version not in ("champion", "latest"):
            # versions are immutable, so their files are hashed before the lock (on an object store this
            # downloads the model; holding the lock that long invites a stale-lock break)
            self._verify_promotable(version)
        with self._locked():
            fault_point("promote:after_lock")
            self._roll_forward()
            if version in ("champion", "latest"):
                version = self.resolve(version)
                self._verify_promotable(version)
            previous, damage = self._current_for_update()
            if previous == version and action == "promote" and damage is None:
                return self._read_pointer()  # a retried promote (also past expect_previous): nothing to change
            if expect_previous is not _ANY and previous != expect_previous:
                raise RegistryError(
                    f"the champion changed since it was compared: expected {expect_previous}, found {previous}; "
                    f"{version} not promoted (re-run to compare with the current champion, or force_promote)"
                )
            if damage is not None:
                details["repaired_pointer"] = f"{self.pointer_path} was damaged: {damage}"
            return self._commit(version, previous, action, reason, details)

    def _verify_promotable(self, version: str) -> None:
        """Refuse (RegistryError) an unknown version, or one whose files are missing or changed since register."""
        version = self.resolve(version)
        problems = self.verify_version(version)
        if problems:
            raise RegistryError(f"version {version} is damaged ({'; '.join(problems)}); not promoted")

    def _commit(self, version: str, previous: str | None, action: str, reason: str, details: dict) -> dict:
        promotion_id = uuid.uuid4().hex[:12]
        at = now_iso()
        pointer = {
            "version": version,
            "promoted_at": at,
            "previous": previous,
            "reason": reason,
            "promotion_id": promotion_id,
            **details,
        }
        entry = {
            "action": action,
            "version": version,
            "previous": previous,
            "reason": reason,
            "at": at,
            "promotion_id": promotion_id,
            **details,
        }
        intent = {
            "id": promotion_id,
            "version": version,
            "previous": previous,
            "action": action,
            "audit_name": self._next_audit_name(promotion_id),
            "pointer": pointer,
            "audit": entry,
        }
        self._write_bytes(self._p(INTENT_NAME), _json_bytes(intent))
        fault_point("promote:after_intent")
        self._apply(intent)
        return pointer

    def rollback(self, version: str, user: str | None = None, reason: str | None = None, **details) -> dict:
        """Operator override: make an earlier (or any) version the champion again; audited with ``user``."""
        user = user or os.environ.get("USER") or "unknown"
        return self.promote(
            version, reason=reason or f"manual promote by {user}", action="rollback", user=user, **details
        )

    def record_rejection(self, version: str, user: str | None = None, reason: str = "", **details) -> dict:
        """Audit that a human rejected promoting ``version`` (the pointer does not move). Returns the entry.

        With a ``run_id`` (the HITL task's run) the entry's id is derived from (run, version), so a retried
        task finds its entry already written and writes no second one.
        """
        version = self.resolve(version)
        user = user or os.environ.get("USER") or "unknown"
        run_id = details.get("run_id")
        with self._locked():
            self._roll_forward()
            if run_id:
                promotion_id = hashlib.sha256(f"{run_id}\n{version}\nrejected".encode()).hexdigest()[:12]
                for name in self._audit_names():
                    if name.endswith(f"-{promotion_id}.json"):
                        return self._read_json(name)
            else:
                promotion_id = uuid.uuid4().hex[:12]
            entry = {
                "action": "rejected",
                "version": version,
                "reason": reason or f"rejected by {user}",
                "user": user,
                "at": now_iso(),
                "promotion_id": promotion_id,
                **details,
            }
            self._write_bytes(self._p("audit", self._next_audit_name(promotion_id)), _json_bytes(entry, indent=None))
        return entry

    # ------------------------------------------------------------------ checking and repairing
    def verify_version(self, version: str) -> list[str]:
        """Problems of one version: files missing or changed since register (sha256 against the manifest)."""
        d = self._p("models", safe_name(version))
        try:
            man = self.manifest(version)
        except RegistryDamaged as exc:
            return [exc.problem]
        files = man.get("files")
        if not isinstance(files, dict):
            return [f"{f} is missing" for f in _LEGACY_REQUIRED if not self.fs.isfile(posixpath.join(d, f))]
        problems = []
        for name, info in sorted(files.items()):
            path = posixpath.join(d, name)
            if not self.fs.isfile(path):
                problems.append(f"{name} is missing")
            elif self._sha256(path) != info.get("sha256"):
                problems.append(f"{name} was changed after register (sha256 differs from the manifest)")
        return problems

    def _orphans(self, min_age_s: float) -> list[str]:
        """Leftovers of crashed writers older than ``min_age_s``: temporary folders/files, manifest-less versions."""
        now = time.time()
        found = []

        def old_enough(path: str) -> bool:
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return False
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
            if isinstance(mtime, datetime):
                mtime = mtime.timestamp()
            return mtime is None or now - float(mtime) >= min_age_s

        models = self._p("models")
        if self.fs.isdir(models):
            for entry in self.fs.ls(models, detail=False):
                name = posixpath.basename(entry.rstrip("/"))
                temporary = name.startswith(".") and ".tmp-" in name
                # object stores: a version whose upload never reached its manifest (locally a version folder
                # appears whole by rename, so a manifest-less one there is damage, not an orphan)
                unfinished_upload = (
                    not self.local
                    and not name.startswith(".")
                    and not self.fs.isfile(posixpath.join(models, name, "manifest.json"))
                )
                if (temporary or unfinished_upload) and old_enough(entry):
                    found.append(entry)
        for folder in (self.base, self._p("submissions"), self._p("audit")):
            if self.fs.isdir(folder):
                for entry in self.fs.ls(folder, detail=False):
                    if posixpath.basename(entry).startswith(TMP_PREFIX) and old_enough(entry):
                        found.append(entry)
        return found

    def remove_orphans(self, min_age_s: float = 3600.0) -> list[str]:
        """Remove leftovers of crashed writers older than ``min_age_s`` (temporary version folders and
        files; on object stores, versions whose upload never reached its manifest). Returns their paths.

        The age threshold keeps an upload or copy that is still running elsewhere safe.
        """
        removed = []
        for path in self._orphans(min_age_s):
            with contextlib.suppress(FileNotFoundError):
                if self.fs.isdir(path):
                    if self.local:
                        shutil.rmtree(path)
                    else:
                        self.fs.rm(path, recursive=True)
                else:
                    self._remove(path)
                removed.append(self.display(path))
                log.info("removed orphan %s", self.display(path))
        return removed

    def doctor(self, repair: bool = False, orphan_min_age_s: float = 3600.0) -> dict:
        """Check the registry and, with ``repair``, fix what can be fixed safely (each pointer fix audited).

        Checks: an unfinished promotion; ``champion.json`` readable and naming a complete version;
        ``submissions/latest.csv`` equal to the champion's submission; every version's files against its
        manifest hashes; the audit log readable and chained (each ``previous`` = the prior ``version``);
        orphaned temporary files/folders older than ``orphan_min_age_s``. Repairs: finish the unfinished
        promotion; restore a damaged pointer to the last audited champion when that version is intact;
        re-copy a wrong ``latest.csv``; remove orphans. A changed or incomplete version cannot be
        repaired (it is immutable): the finding says what to do.

        Returns ``{"ok": bool, "findings": [...], "checked": {...}}``; each finding has ``check``,
        ``path``, ``problem``, ``action`` (what was done or what to do) and ``repaired``.
        """
        findings: list[dict] = []

        def add(check, path, problem, action, repaired=False):
            findings.append(
                {"check": check, "path": self.display(path), "problem": problem, "action": action, "repaired": repaired}
            )

        versions = self.versions()
        damaged_versions: dict[str, list[str]] = {}
        for v in versions:
            problems = self.verify_version(v)
            if problems:
                damaged_versions[v] = problems
                add(
                    "version",
                    self._p("models", v),
                    "; ".join(problems),
                    "immutable version damaged: not repairable; promote another version if it is the champion "
                    "(turkey models promote VERSION) and re-run the pipeline to rebuild it",
                )

        lock = (
            self._locked(timeout=_env_float("TURKEY_REGISTRY_LOCK_TIMEOUT_S", 120.0))
            if repair
            else contextlib.nullcontext()
        )
        with lock:
            intent = self._read_intent()
            if self.fs.isfile(self._p(INTENT_NAME)):
                what = f"promotion of {intent['version']} (id {intent['id']})" if intent else "unreadable intent"
                if repair:
                    try:
                        self._roll_forward()
                        add("intent", self._p(INTENT_NAME), f"unfinished {what}", "finished (rolled forward)", True)
                    except RegistryDamaged as exc:
                        self._remove(self._p(INTENT_NAME))
                        add(
                            "intent",
                            self._p(INTENT_NAME),
                            exc.problem,
                            "discarded: the promotion could not finish; the pointer is checked below",
                            True,
                        )
                else:
                    add("intent", self._p(INTENT_NAME), f"unfinished {what}", f"run `{REPAIR_HINT}` to finish it")

            self._doctor_pointer(add, repair, damaged_versions)

        # outside the lock: reading every audit entry and deleting orphans (old enough that no writer still
        # uses them) need no exclusion, and promoters should not wait for them
        self._doctor_audit(add)
        if repair:
            for path in self.remove_orphans(orphan_min_age_s):
                add("orphan", path, "left by an interrupted writer", "removed", True)
        else:
            for path in self._orphans(orphan_min_age_s):
                add("orphan", path, "left by an interrupted writer", f"run `{REPAIR_HINT}` to remove it")

        return {
            "ok": all(f["repaired"] for f in findings),
            "findings": findings,
            "checked": {
                "versions": len(versions),
                "audit_entries": len(self._audit_names()),
                "champion": self._champion_or_none(),
            },
        }

    def _champion_or_none(self) -> str | None:
        try:
            return self.champion_version()
        except TurkeyError:
            return None

    def _doctor_pointer(self, add, repair: bool, damaged_versions: dict) -> None:
        pointer_path = self._p("champion.json")
        last = self._last_pointer_entry_or_none()
        try:
            pointer = self._read_pointer()
            problem = None
            if pointer is None and last is not None:
                problem = f"missing, but the audit log names {last.get('version')} as champion"
            elif pointer is not None and pointer["version"] in damaged_versions:
                problem = f"names version {pointer['version']}, whose files are damaged"
        except RegistryDamaged as exc:
            pointer, problem = None, exc.problem
        if problem is not None:
            target = last.get("version") if last else None
            usable = target is not None and target in self.versions() and target not in damaged_versions
            if usable and repair and (pointer is None or pointer.get("version") != target):
                self._commit(
                    target,
                    target,
                    "repair",
                    f"repaired by turkey models doctor: champion.json {problem}",
                    {"repaired_pointer": f"{self.display(pointer_path)}: {problem}"},
                )
                add("pointer", pointer_path, problem, f"restored to the last audited champion {target} (audited)", True)
            elif usable and pointer is None:
                add("pointer", pointer_path, problem, f"run `{REPAIR_HINT}` to restore it to {target}")
            else:
                add(
                    "pointer",
                    pointer_path,
                    problem,
                    "no intact audited champion to restore: promote a complete version with "
                    "`turkey models promote VERSION`",
                )
            return
        if pointer is None:
            return
        version = pointer["version"]
        src = self._p("models", version, "submission.csv")
        want = self._sha256(src)
        wrong = []
        for path in (self._p("submissions", "latest.csv"), self._p("submissions", f"{version}.csv")):
            have = self._sha256(path) if self.fs.isfile(path) else None
            if have != want:
                wrong.append((path, "missing" if have is None else f"differs from the champion {version}'s submission"))
        if wrong and repair:  # the same transaction as a promotion re-copies both and re-writes the pointer
            what = "; ".join(f"{posixpath.basename(p)} {problem}" for p, problem in wrong)
            carried = {
                k: v
                for k, v in pointer.items()
                if k not in ("version", "promoted_at", "previous", "reason", "promotion_id")
            }
            self._commit(version, version, "repair", f"repaired by turkey models doctor: {what}", carried)
        for path, problem in wrong:
            add(
                "submission",
                path,
                problem,
                f"re-copied from {version} (audited)" if repair else f"run `{REPAIR_HINT}` to re-copy it",
                repair,
            )

    def _last_pointer_entry_or_none(self) -> dict | None:
        try:
            return self._last_pointer_entry()
        except RegistryDamaged:
            return None

    def _doctor_audit(self, add) -> None:
        prior = None
        for path in self._audit_names():
            try:
                entry = self._read_json(path)
            except (ValueError, UnicodeDecodeError) as exc:
                add("audit", path, f"unreadable audit entry ({exc})", "not repairable (history); inspect the file")
                continue
            if entry.get("action") not in POINTER_ACTIONS:
                continue
            if prior is not None and entry.get("previous") != prior:
                add(
                    "audit",
                    path,
                    f"previous={entry.get('previous')} but the prior audited champion is {prior} (an update was lost)",
                    "not repairable (history)",
                )
            prior = entry.get("version")
