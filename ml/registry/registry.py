"""The model registry: :class:`Registry` -- versions, the champion pointer, the audit log, and promotion
as one serialised transaction, over a :class:`~ml.registry.storage.Storage` and the lock of
:mod:`ml.registry.lock`. Checks and repairs: :mod:`ml.registry.doctor`. The layout and every guarantee
are in docs/publishing.md.

The transaction (:meth:`Registry.promote`): under the lock, finish an unfinished promotion, read the
pointer (compare-and-set with ``expect_previous``), write the *intent* -- from then on the promotion is
decided -- then copy the submissions, write ``champion.json`` and the audit entry (named by the promotion
id: written once however often it is replayed) and delete the intent. After a crash the next promotion,
``doctor --repair`` or any reader that can take the lock replays it; until then :meth:`Registry.champion`
reports the intent's pointer. Fault points (:mod:`ml.faults`) mark each step for the crash tests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ml.errors import EnvironmentFault, RegistryBusy, RegistryDamaged, RegistryError, TurkeyError
from ml.faults import fault_point
from ml.fsutil import environment_errors, fsync_dir
from ml.registry.lock import FileLock, ObjectLock
from ml.registry.storage import Storage, json_bytes, sha256_file, tmp_suffix
from ml.settings import safe_name, settings

log = logging.getLogger(__name__)

#: The files every new version folder holds besides manifest.json (register copies these, the manifest
#: records their hashes). A version's completeness is judged by its own manifest's file list.
VERSION_FILES = ("model.keras", "metrics.json", "history.json", "curves.png", "submission.csv", "record_ids.json",
                 "profile.json")
#: Checked for versions whose manifest predates per-file hashes.
LEGACY_REQUIRED = ("model.keras", "submission.csv")
#: Audit actions that move (or rewrite) champion.json.
POINTER_ACTIONS = ("promote", "rollback", "repair")
LOCK_NAME = ".registry.lock"
INTENT_NAME = ".promotion-intent.json"
REPAIR_HINT = "turkey models doctor --repair"
_ANY = object()  # ``expect_previous`` not given: promote whatever the champion is


def now_iso() -> str:
    """The current UTC time as an ISO 8601 string with microseconds and a ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Registry:
    """The model registry at ``root`` (a local path or fsspec URL; default ``TURKEY_REGISTRY_URL``, else the
    artifacts root)."""

    def __init__(self, root=None):
        s = settings()
        self.storage = Storage(str(root) if root is not None else s.registry_url or str(s.artifacts_root))
        self.fs, self.base, self.local = self.storage.fs, self.storage.base, self.storage.local

    # ------------------------------------------------------------------ paths
    def version_path(self, version: str, *names: str) -> str:
        """The fs path of ``version``'s folder (or of the file ``names`` in it); ``version`` made safe."""
        return self.storage.path("models", safe_name(version), *names)

    def display(self, path: str) -> str:
        """A path people can open (:meth:`Storage.display`)."""
        return self.storage.display(path)

    @property
    def root(self) -> str:
        """The registry root, as a path or URL."""
        return self.display(self.base)

    @property
    def models(self) -> str:
        """The folder holding one sub-folder per version."""
        return self.display(self.storage.path("models"))

    @property
    def audit_dir(self) -> str:
        """The append-only audit folder."""
        return self.display(self.storage.path("audit"))

    @property
    def pointer_path(self) -> str:
        """``champion.json``."""
        return self.display(self.storage.path("champion.json"))

    def version_dir(self, version: str) -> str:
        """The folder of ``version`` (whether or not it exists), as a display path."""
        return self.display(self.version_path(version))

    def submission_file(self, version: str | None = None) -> str:
        """The fs path of ``submissions/<version>.csv``, or of ``submissions/latest.csv`` without one."""
        return self.storage.path("submissions", f"{safe_name(version)}.csv" if version else "latest.csv")

    def submission_path(self, version: str | None = None) -> str:
        """:meth:`submission_file` as a display path."""
        return self.display(self.submission_file(version))

    # ------------------------------------------------------------------ reading
    def versions(self) -> list[str]:
        """Published versions (those whose manifest exists), oldest first."""
        return sorted(n for n in self.storage.names(self.storage.path("models"))
                      if not n.startswith(".") and self.storage.isfile(self.version_path(n, "manifest.json")))

    def manifest(self, version: str) -> dict:
        """The manifest of ``version``; ``RegistryError`` if there is no such version."""
        path = self.version_path(version, "manifest.json")
        if not self.storage.isfile(path):
            raise RegistryError(f"no model version {version!r} in {self.models}")
        try:
            return self.storage.read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryDamaged(self.display(path), f"unreadable manifest ({exc})") from None

    def missing_files(self, version: str) -> list[str]:
        """Files ``version``'s manifest lists (or, for old manifests, the essential ones) that are absent."""
        man = self.manifest(version)
        names = sorted(man["files"]) if isinstance(man.get("files"), dict) else list(LEGACY_REQUIRED)
        return [f for f in names if not self.storage.isfile(self.version_path(version, f))]

    def verify_version(self, version: str) -> list[str]:
        """Problems of one version: files missing or changed since register (sha256 against the manifest)."""
        try:
            files = self.manifest(version).get("files")
        except RegistryDamaged as exc:
            return [exc.problem]
        if not isinstance(files, dict):
            return [f"{f} is missing" for f in self.missing_files(version)]
        problems = []
        for name, info in sorted(files.items()):
            path = self.version_path(version, name)
            if not self.storage.isfile(path):
                problems.append(f"{name} is missing")
            elif self.storage.sha256(path) != info.get("sha256"):
                problems.append(f"{name} was changed after register (sha256 differs from the manifest)")
        return problems

    def read_pointer(self) -> dict | None:
        """champion.json, checked to name a complete version; None when there is none. RegistryDamaged when
        it is unusable. Unlike :meth:`champion`, an unfinished promotion is not looked at."""
        path = self.pointer_path
        if not self.storage.isfile(self.storage.path("champion.json")):
            return None
        try:
            pointer = self.storage.read_json(self.storage.path("champion.json"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryDamaged(path, f"unreadable ({type(exc).__name__}: {exc})") from None
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
            raise RegistryDamaged(path, f"names version {version!r}, which is incomplete (missing {', '.join(missing)})")
        return pointer

    def champion(self) -> dict | None:
        """The champion pointer (``version``, ``promoted_at``, ``previous``, ``reason``, ...), or None when
        nothing was ever promoted. RegistryDamaged when ``champion.json`` is unusable. An unfinished
        promotion is finished first when the lock is free; if it is not (another promoter at work,
        read-only access), the decided promotion's pointer is returned."""
        intent = self.pending_promotion()
        if intent is not None:
            try:
                with self.locked(timeout=0):
                    self.roll_forward()
            except (RegistryBusy, EnvironmentFault) as exc:
                log.info("unfinished promotion %s not finished by this reader: %s", intent.get("id"), exc)
                return intent["pointer"]
        return self.read_pointer()

    def champion_version(self) -> str | None:
        """The champion's version, or None when nothing was ever promoted (RegistryDamaged when broken)."""
        c = self.champion()
        return c["version"] if c else None

    def resolve(self, ref: str) -> str:
        """A version name from ``ref``: a version, ``champion`` or ``latest`` (newest registered)."""
        if ref == "champion":
            if (v := self.champion_version()) is None:
                raise RegistryError("there is no champion yet")
            return v
        if ref == "latest":
            if not (vs := self.versions()):
                raise RegistryError("the registry has no versions yet")
            return vs[-1]
        self.manifest(ref)
        return ref

    def audit_names(self) -> list[str]:
        """The audit entries' fs paths, oldest first (temporaries left out)."""
        folder = self.storage.path("audit")
        return [posixpath.join(folder, n) for n in sorted(self.storage.names(folder))
                if n.endswith(".json") and not n.startswith(".")]

    def audit(self) -> list[dict]:
        """Every audit entry, oldest first (``action``, ``version``, ``previous``, ``reason``, ``at``, ...)."""
        out = []
        for p in self.audit_names():
            try:
                out.append(self.storage.read_json(p))
            except (ValueError, UnicodeDecodeError) as exc:
                raise RegistryDamaged(self.display(p), f"unreadable audit entry ({exc})") from None
        return out

    def fetch_model(self, version: str, dest_dir) -> str:
        """A local path to ``version``'s model.keras (downloaded when the registry is remote)."""
        src = self.version_path(version, "model.keras")
        if self.local:
            return src
        dest = Path(dest_dir) / f"{safe_name(version)}.keras"
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(src, str(dest))
        return str(dest)

    # ------------------------------------------------------------------ registering
    def register(self, version: str, candidate_dir, manifest: dict) -> tuple[str, bool]:
        """Publish the local folder ``candidate_dir`` as ``models/<version>``; returns (path, created).

        The manifest gets ``version``, ``created_at`` and ``files`` (sha256 and size of each stored file).
        Idempotent: an existing version (a retried or cleared task of the same run) is left as is. Locally
        a hidden temporary folder is filled and renamed into place; on an object store the manifest is
        uploaded last. Disk full / read-only / permission errors raise EnvironmentFault and leave no
        partial version (a crash may leave a temporary folder: ``doctor --repair`` removes it).
        """
        dest = self.version_path(version)
        if self.storage.isfile(posixpath.join(dest, "manifest.json")):
            return self.display(dest), False
        candidate_dir = Path(candidate_dir)
        if missing := [f for f in VERSION_FILES if not (candidate_dir / f).is_file()]:
            raise TurkeyError(f"candidate {candidate_dir} is incomplete: missing {', '.join(missing)}")
        manifest = {**manifest, "version": version, "created_at": manifest.get("created_at") or now_iso()}
        with environment_errors(self.display(dest)):
            if self.local:
                return self._register_local(safe_name(version), dest, candidate_dir, manifest)
            files = _file_entries(candidate_dir)
            for f in VERSION_FILES:
                self.fs.put_file(str(candidate_dir / f), posixpath.join(dest, f))
            fault_point("register:after_copy")
            fault_point("register:before_commit")
            self.fs.pipe_file(posixpath.join(dest, "manifest.json"), json_bytes({**manifest, "files": files}))
            return self.display(dest), True

    def _register_local(self, name: str, dest: str, candidate_dir: Path, manifest: dict) -> tuple[str, bool]:
        models = Path(self.base) / "models"
        models.mkdir(parents=True, exist_ok=True)
        tmp = models / f".{name}.{tmp_suffix()}"
        tmp.mkdir()
        try:
            for f in VERSION_FILES:
                shutil.copyfile(candidate_dir / f, tmp / f)
            fault_point("register:after_copy")
            (tmp / "manifest.json").write_bytes(json_bytes({**manifest, "files": _file_entries(tmp)}))
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

    # ------------------------------------------------------------------ the promotion transaction
    def locked(self, timeout: float | None = None):
        """The registry lock: ``flock`` locally, a conditionally created object on an object store."""
        s = settings()
        timeout = s.registry_lock_timeout_s if timeout is None else timeout
        path = self.storage.path(LOCK_NAME)
        if self.local:
            return FileLock(path, timeout)
        return ObjectLock(self.fs, path, self.display(path), timeout, s.registry_lock_stale_s)

    def pending_promotion(self) -> dict | None:
        """The unfinished promotion's intent; None when there is none or it cannot be read."""
        path = self.storage.path(INTENT_NAME)
        if not self.storage.isfile(path):
            return None
        try:
            intent = self.storage.read_json(path)
        except (ValueError, UnicodeDecodeError, FileNotFoundError):
            return None
        return intent if isinstance(intent, dict) and "pointer" in intent else None

    def roll_forward(self) -> dict | None:
        """Finish an unfinished promotion (call with the lock held); returns its intent, or None.
        RegistryDamaged when the intent is unreadable or its version is no longer complete."""
        path = self.storage.path(INTENT_NAME)
        if not self.storage.isfile(path):
            return None
        if (intent := self.pending_promotion()) is None:  # cannot come from this code (atomic writes)
            raise RegistryDamaged(self.display(path), "unreadable promotion intent", REPAIR_HINT)
        try:
            problem = ", ".join(self.missing_files(intent["version"]))
            problem = f"missing {problem}" if problem else None
        except TurkeyError as exc:
            problem = str(exc)
        if problem:
            raise RegistryDamaged(self.display(path), f"unfinished promotion of {intent['version']!r} cannot "
                                                      f"finish ({problem})")
        log.warning("finishing an interrupted promotion of %s (id %s)", intent["version"], intent["id"])
        self._apply(intent)
        return intent

    def discard_pending_promotion(self) -> None:
        """Delete an intent that cannot finish (``doctor --repair``; call with the lock held)."""
        self.storage.remove(self.storage.path(INTENT_NAME))

    def recover(self) -> dict | None:
        """Finish an interrupted promotion, if any (takes the lock); returns its intent or None."""
        with self.locked():
            return self.roll_forward()

    def last_pointer_entry(self) -> dict | None:
        """The newest audit entry that moved the pointer."""
        return next((e for e in reversed(self.audit()) if e.get("action") in POINTER_ACTIONS), None)

    def promote(self, version: str, reason: str, action: str = "promote", *, approval: dict | None = None,
                expect_previous=_ANY, **details) -> dict:
        """Make ``version`` the champion in one serialised transaction; returns the new pointer.

        ``details`` (``run_id``, ``force_promote``, ``user``, ...) and ``approval`` (a reviewer's decision)
        are recorded in ``champion.json`` and the audit entry. ``expect_previous`` makes it a
        compare-and-set: refused (RegistryError) unless the current champion is that version (None: no
        champion). A retried promote of the current champion changes nothing. A damaged pointer is replaced
        (the documented repair), ``previous`` then taken from the audit log.
        """
        if approval is not None:
            details["approval"] = approval
        if version not in ("champion", "latest"):
            self._verify_promotable(version)  # hashed before the lock: versions are immutable
        with self.locked():
            fault_point("promote:after_lock")
            self.roll_forward()
            if version in ("champion", "latest"):
                version = self.resolve(version)
                self._verify_promotable(version)
            try:
                previous, damage = (p["version"] if (p := self.read_pointer()) else None), None
            except RegistryDamaged as exc:  # the pointer is replaced; its previous comes from the audit
                last = self.last_pointer_entry()
                previous, damage = (last.get("version") if last else None), exc.problem
            if previous == version and action == "promote" and damage is None:
                return self.read_pointer()  # a retried promote (also past expect_previous): nothing to change
            if expect_previous is not _ANY and previous != expect_previous:
                raise RegistryError(
                    f"the champion changed since it was compared: expected {expect_previous}, found {previous}; "
                    f"{version} not promoted (re-run to compare with the current champion, or force_promote)")
            if damage is not None:
                details["repaired_pointer"] = f"{self.pointer_path} was damaged: {damage}"
            return self.commit(version, previous, action, reason, details)

    def rollback(self, version: str, user: str | None = None, reason: str | None = None, **details) -> dict:
        """Operator override: make an earlier (or any) version the champion again; audited with ``user``."""
        user = user or os.environ.get("USER") or "unknown"
        return self.promote(version, reason=reason or f"manual promote by {user}", action="rollback", user=user,
                            **details)

    def _verify_promotable(self, version: str) -> None:
        version = self.resolve(version)
        if problems := self.verify_version(version):
            raise RegistryError(f"version {version} is damaged ({'; '.join(problems)}); not promoted")

    def commit(self, version: str, previous: str | None, action: str, reason: str, details: dict) -> dict:
        """Write the intent, then apply it (call with the lock held; :meth:`promote` and the doctor's
        repairs do). Returns the new pointer."""
        promotion_id, at = uuid.uuid4().hex[:12], now_iso()
        common = {"version": version, "previous": previous, "reason": reason, "promotion_id": promotion_id}
        intent = {"id": promotion_id, "version": version, "previous": previous, "action": action,
                  "audit_name": self._next_audit_name(promotion_id),
                  "pointer": {**common, "promoted_at": at, **details},
                  "audit": {"action": action, **common, "at": at, **details}}
        self.storage.write_bytes(self.storage.path(INTENT_NAME), json_bytes(intent))
        fault_point("promote:after_intent")
        self._apply(intent)
        return intent["pointer"]

    def _apply(self, intent: dict) -> None:
        """The idempotent second half of the transaction, replayed by :meth:`roll_forward`."""
        src = self.version_path(intent["version"], "submission.csv")
        self.storage.copy(src, self.submission_file(intent["version"]))
        fault_point("promote:after_versioned_csv")
        self.storage.copy(src, self.submission_file())
        fault_point("promote:after_latest_csv")
        self.storage.write_bytes(self.storage.path("champion.json"), json_bytes(intent["pointer"]))
        fault_point("promote:after_pointer")
        audit_path = self.storage.path("audit", intent["audit_name"])
        if not self.storage.isfile(audit_path):
            self.storage.write_bytes(audit_path, json_bytes(intent["audit"], indent=None))
        fault_point("promote:after_audit")
        self.storage.remove(self.storage.path(INTENT_NAME))

    def _next_audit_name(self, entry_id: str) -> str:
        """``<UTC time>-<id>.json``, later in sort order than every existing entry (clocks may step back)."""
        stamp = datetime.now(UTC)
        if names := self.audit_names():
            try:
                last = datetime.strptime(posixpath.basename(names[-1]).split("-", 1)[0], "%Y%m%dT%H%M%S%fZ")
                stamp = max(stamp, datetime.fromtimestamp(last.replace(tzinfo=UTC).timestamp() + 1e-6, UTC))
            except ValueError:
                pass
        return f"{stamp.strftime('%Y%m%dT%H%M%S%fZ')}-{entry_id}.json"

    def record_rejection(self, version: str, user: str | None = None, reason: str = "", **details) -> dict:
        """Audit that a human rejected promoting ``version`` (the pointer does not move); returns the entry.
        With a ``run_id`` the entry's id comes from (run, version), so a retried task writes no second one."""
        version = self.resolve(version)
        user = user or os.environ.get("USER") or "unknown"
        run_id = details.get("run_id")
        with self.locked():
            self.roll_forward()
            if run_id:
                entry_id = hashlib.sha256(f"{run_id}\n{version}\nrejected".encode()).hexdigest()[:12]
                if done := [n for n in self.audit_names() if n.endswith(f"-{entry_id}.json")]:
                    return self.storage.read_json(done[0])
            else:
                entry_id = uuid.uuid4().hex[:12]
            entry = {"action": "rejected", "version": version, "reason": reason or f"rejected by {user}",
                     "user": user, "at": now_iso(), "promotion_id": entry_id, **details}
            self.storage.write_bytes(self.storage.path("audit", self._next_audit_name(entry_id)),
                                     json_bytes(entry, indent=None))
        return entry


def _file_entries(folder: Path) -> dict:
    """``{file: {sha256, bytes}}`` of the version files in the local ``folder``."""
    return {f: {"sha256": sha256_file(folder / f), "bytes": (folder / f).stat().st_size} for f in VERSION_FILES}
