"""The model registry: versioned, immutable model folders, a champion pointer and submissions.

Layout under the registry root (the artifacts root by default; ``TURKEY_REGISTRY_URL`` may name any
fsspec URL instead, e.g. ``s3://bucket/turkey`` with s3fs installed)::

    models/<version>/          immutable once written: model.keras, metrics.json, history.json,
                               curves.png, submission.csv, manifest.json (written last)
    champion.json              pointer to the live version
    submissions/<version>.csv  scored submission of each promoted version
    submissions/latest.csv     the champion's submission
    audit/<time>-<id>.json     append-only: one object per promotion or rollback

Atomicity: on a local (or mounted shared) filesystem every file is written to a temporary name and
renamed into place, and a version folder appears by renaming a complete temporary folder. On an object
store each object is written by one PUT (readers see the old or the new object, never a part), and a
version counts as published only once its ``manifest.json`` -- uploaded last -- exists. Either way a
reader never sees a half-written model, pointer or CSV, and an existing version is never rewritten, so
retried or cleared tasks of the same run are idempotent.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from ml.config import artifacts_root, safe_name
from ml.errors import TurkeyError
from ml.fsutil import atomic_output

VERSION_FILES = ("model.keras", "metrics.json", "history.json", "curves.png", "submission.csv")


def now_iso() -> str:
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
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tmp_suffix() -> str:
    return f"tmp-{os.getpid()}-{time.monotonic_ns()}"


class Registry:
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
        return self.display(self.base)

    @property
    def models(self) -> str:
        return self.display(self._p("models"))

    @property
    def submissions(self) -> str:
        return self.display(self._p("submissions"))

    @property
    def audit_dir(self) -> str:
        return self.display(self._p("audit"))

    def version_dir(self, version: str) -> str:
        return self.display(self._p("models", safe_name(version)))

    def submission_path(self, version: str | None = None) -> str:
        return self.display(self._p("submissions", f"{safe_name(version)}.csv" if version else "latest.csv"))

    # ------------------------------------------------------------------ low-level I/O
    def _read_json(self, path: str):
        with self.fs.open(path, "rb") as fh:
            return json.loads(fh.read())

    def _write_bytes(self, path: str, data: bytes) -> None:
        if self.local:
            with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            self.fs.pipe_file(path, data)  # one PUT

    def _copy_within(self, src: str, dst: str) -> None:
        if self.local:
            with atomic_output(dst) as tmp:
                shutil.copyfile(src, tmp)
        else:
            self.fs.copy(src, dst)  # server-side copy: the new object appears whole

    # ------------------------------------------------------------------ reading
    def versions(self) -> list[str]:
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
        path = self._p("models", safe_name(version), "manifest.json")
        if not self.fs.isfile(path):
            raise TurkeyError(f"no model version {version!r} in {self.models}")
        return self._read_json(path)

    def champion(self) -> dict | None:
        path = self._p("champion.json")
        return self._read_json(path) if self.fs.isfile(path) else None

    def champion_version(self) -> str | None:
        c = self.champion()
        return c["version"] if c else None

    def resolve(self, ref: str) -> str:
        if ref == "champion":
            v = self.champion_version()
            if v is None:
                raise TurkeyError("there is no champion yet")
            return v
        if ref == "latest":
            vs = self.versions()
            if not vs:
                raise TurkeyError("the registry has no versions yet")
            return vs[-1]
        self.manifest(ref)
        return ref

    def audit(self) -> list[dict]:
        d = self._p("audit")
        if not self.fs.isdir(d):
            return []
        names = sorted(p for p in self.fs.ls(d, detail=False) if p.endswith(".json"))
        return [self._read_json(p) for p in names]

    def describe(self, ref: str) -> dict:
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
        }

    def list(self) -> list[dict]:
        champ = self.champion_version()
        promoted = {e["version"] for e in self.audit() if e.get("action") in ("promote", "rollback")}
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
                    "gate": man.get("gate", {}).get("decision"),
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

    # ------------------------------------------------------------------ writing
    def register(self, version: str, candidate_dir, manifest: dict) -> tuple[str, bool]:
        """Publish the local folder ``candidate_dir`` as ``models/<version>``. Returns (path, created).

        Idempotent: if the version exists (a retried or cleared task of the same run), it is left as is.
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
        manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        if not self.local:
            for f in VERSION_FILES:
                self.fs.put_file(str(candidate_dir / f), posixpath.join(dest, f))
            self.fs.pipe_file(posixpath.join(dest, "manifest.json"), manifest_bytes)  # the commit marker
            return self.display(dest), True
        models = Path(self.base) / "models"
        models.mkdir(parents=True, exist_ok=True)
        tmp = models / f".{name}.{_tmp_suffix()}"
        tmp.mkdir()
        try:
            for f in VERSION_FILES:
                shutil.copyfile(candidate_dir / f, tmp / f)
            (tmp / "manifest.json").write_bytes(manifest_bytes)
            for p in tmp.iterdir():
                p.chmod(0o444)
            try:
                os.rename(tmp, dest)  # atomic; fails if dest appeared meanwhile
            except OSError:
                if os.path.isfile(os.path.join(dest, "manifest.json")):
                    return dest, False
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest, True

    def _append_audit(self, entry: dict) -> None:
        entry = {"at": now_iso(), **entry}
        name = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.json"
        self._write_bytes(self._p("audit", name), (json.dumps(entry, sort_keys=True) + "\n").encode())

    def promote(self, version: str, reason: str, action: str = "promote", **details) -> dict:
        """Make ``version`` the champion: submissions first, then the pointer, then the audit entry."""
        version = self.resolve(version)
        previous = self.champion_version()
        if previous == version and action == "promote":
            return self.champion()  # idempotent retry
        src = self._p("models", safe_name(version), "submission.csv")
        self._copy_within(src, self._p("submissions", f"{safe_name(version)}.csv"))
        self._copy_within(src, self._p("submissions", "latest.csv"))
        pointer = {"version": version, "promoted_at": now_iso(), "previous": previous, "reason": reason, **details}
        self._write_bytes(self._p("champion.json"), (json.dumps(pointer, indent=2, sort_keys=True) + "\n").encode())
        self._append_audit({"action": action, "version": version, "previous": previous, "reason": reason, **details})
        return pointer

    def rollback(self, version: str, user: str | None = None) -> dict:
        """Operator override: make an earlier (or any) version the champion again; audited."""
        user = user or os.environ.get("USER") or "unknown"
        return self.promote(version, reason=f"manual promote by {user}", action="rollback", user=user)
