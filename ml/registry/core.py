"""The model registry: :class:`Registry` -- versions, the champion pointer, decisions and the audit log.

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
    .registry.lock             serialises promotions (:mod:`ml.registry.lock`)
    .promotion-intent.json     present only while a promotion is unfinished (:mod:`ml.registry.transaction`)

A version folder appears by renaming a complete temporary folder (locally), or counts as published only
once its ``manifest.json`` -- uploaded last -- exists (object stores). An existing version is never
rewritten, so retried or cleared tasks of the same run are idempotent. Single-file writes are atomic
(:mod:`ml.registry.store`); promotion is one transaction (:mod:`ml.registry.transaction`); checks and
repairs are :mod:`ml.registry.doctor`.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
from pathlib import Path

from ml.config import safe_name
from ml.errors import EnvironmentFault, RegistryBusy, RegistryDamaged, RegistryError, TurkeyError
from ml.faults import fault_point
from ml.fsutil import environment_errors, fsync_dir
from ml.registry.common import LEGACY_REQUIRED, VERSION_FILES, json_bytes, now_iso, sha256_file, tmp_suffix
from ml.registry.doctor import Doctor
from ml.registry.store import RegistryStore
from ml.registry.transaction import Promotions

log = logging.getLogger(__name__)

#: ``describe(champion=...)`` not given: read the pointer.
_UNREAD = object()


class Registry(Promotions, Doctor, RegistryStore):
    """The model registry at ``root`` (a local path or any fsspec URL; default: ``TURKEY_REGISTRY_URL``,
    else the artifacts root): reading (versions, manifests, the champion pointer, the audit log and the
    human decisions in it) and registering versions here; promoting in :class:`Promotions`, checking and
    repairing in :class:`Doctor`, paths and single-file I/O in :class:`RegistryStore`. See the package
    docstrings for the layout and the guarantees."""

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
        path = self.version_path(version, "manifest.json")
        if not self.fs.isfile(path):
            raise RegistryError(f"no model version {version!r} in {self.models}")
        try:
            return self._read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryDamaged(self.display(path), f"unreadable manifest ({exc})") from None

    def missing_files(self, version: str) -> list[str]:
        """Files ``version``'s manifest lists (or, for old manifests, the essential ones) that are absent."""
        d = self.version_path(version)
        man = self.manifest(version)
        names = sorted(man["files"]) if isinstance(man.get("files"), dict) else list(LEGACY_REQUIRED)
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
        """The audit entries' fs paths, oldest first (temporaries left out)."""
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

    def describe(self, ref: str, champion: str | None | object = _UNREAD) -> dict:
        """Paths, metrics, manifest and human decisions of ``ref`` (a version, ``champion`` or ``latest``).

        ``champion``: the champion's version when the caller has just read it (None: there is none), so
        the pointer is not read again for ``is_champion``.
        """
        version = self.resolve(ref)
        if champion is _UNREAD:
            champion = self.champion_version()
        d = self.version_path(version)
        metrics_path = posixpath.join(d, "metrics.json")
        return {
            "version": version,
            "is_champion": champion == version,
            "model": self.display(posixpath.join(d, "model.keras")),
            "submission": self.display(posixpath.join(d, "submission.csv")),
            "curves": self.display(posixpath.join(d, "curves.png")),
            "metrics": self._read_json(metrics_path) if self.fs.isfile(metrics_path) else {},
            "manifest": self.manifest(version),
            "decisions": self.decisions(version),
        }

    @staticmethod
    def decision_of(entry: dict) -> dict | None:
        """The human decision one audit entry records, or None: an approved promotion (its ``approval``) or
        a rejection. Returns ``{decision, by, at, comment, run_id}``; ``by``/``at`` fall back to the entry's
        ``user``/``at`` when the approval does not name them."""
        approval = entry.get("approval") if isinstance(entry.get("approval"), dict) else None
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
            d = self.decision_of(entry)
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
        src = self.version_path(version, "model.keras")
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
        dest = self.version_path(version)
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
        """``{file: {sha256, bytes}}`` of the version files in the local ``folder``."""
        return {f: {"sha256": sha256_file(folder / f), "bytes": (folder / f).stat().st_size} for f in VERSION_FILES}

    def _register_remote(self, dest: str, candidate_dir: Path, manifest: dict) -> tuple[str, bool]:
        """Upload the files, then the manifest last: the version counts as published once it exists."""
        files = self._file_entries(candidate_dir)
        for f in VERSION_FILES:
            self.fs.put_file(str(candidate_dir / f), posixpath.join(dest, f))
        fault_point("register:after_copy")
        fault_point("register:before_commit")
        self.fs.pipe_file(posixpath.join(dest, "manifest.json"), json_bytes({**manifest, "files": files}))
        return self.display(dest), True

    def _register_local(self, name: str, dest: str, candidate_dir: Path, manifest: dict) -> tuple[str, bool]:
        """Fill a hidden temporary folder (files read-only, fsynced), then rename it into place."""
        models = Path(self.base) / "models"
        models.mkdir(parents=True, exist_ok=True)
        tmp = models / f".{name}.{tmp_suffix()}"
        tmp.mkdir()
        try:
            for f in VERSION_FILES:
                shutil.copyfile(candidate_dir / f, tmp / f)
            fault_point("register:after_copy")
            files = self._file_entries(tmp)  # hashes of what is stored, not of the source
            (tmp / "manifest.json").write_bytes(json_bytes({**manifest, "files": files}))
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
