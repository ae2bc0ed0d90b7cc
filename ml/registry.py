"""The model registry: versioned, immutable model folders, a champion pointer and submissions.

Layout under the artifacts root::

    models/<version>/          immutable once written: model.keras, metrics.json, history.json,
                               curves.png, submission.csv, manifest.json
    champion.json              pointer to the live version (atomic replace)
    submissions/<version>.csv  scored submission of each promoted version
    submissions/latest.csv     the champion's submission (atomic replace)
    audit.log                  append-only JSON lines: every promotion and rollback

Every write goes to a temporary name first and is renamed into place, so a reader never sees a
half-written model, pointer or CSV. A version folder is published by renaming a complete temporary
folder, and a version that already exists is never rewritten (retries are idempotent).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

from ml.config import artifacts_root, safe_name
from ml.errors import TurkeyError

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


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}-{time.monotonic_ns()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


class Registry:
    def __init__(self, root=None):
        self.root = Path(root) if root is not None else artifacts_root()
        self.models = self.root / "models"
        self.submissions = self.root / "submissions"
        self.champion_file = self.root / "champion.json"
        self.audit_file = self.root / "audit.log"

    # ------------------------------------------------------------------ reading
    def versions(self) -> list[str]:
        if not self.models.is_dir():
            return []
        return sorted(p.name for p in self.models.iterdir() if p.is_dir() and (p / "manifest.json").is_file())

    def version_dir(self, version: str) -> Path:
        return self.models / safe_name(version)

    def manifest(self, version: str) -> dict:
        path = self.version_dir(version) / "manifest.json"
        if not path.is_file():
            raise TurkeyError(f"no model version {version!r} in {self.models}")
        return json.loads(path.read_text())

    def champion(self) -> dict | None:
        if not self.champion_file.is_file():
            return None
        return json.loads(self.champion_file.read_text())

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
        if not self.audit_file.is_file():
            return []
        return [json.loads(line) for line in self.audit_file.read_text().splitlines() if line.strip()]

    def describe(self, ref: str) -> dict:
        version = self.resolve(ref)
        d = self.version_dir(version)
        man = self.manifest(version)
        return {
            "version": version,
            "is_champion": self.champion_version() == version,
            "model": str(d / "model.keras"),
            "submission": str(d / "submission.csv"),
            "curves": str(d / "curves.png"),
            "metrics": json.loads((d / "metrics.json").read_text()) if (d / "metrics.json").is_file() else {},
            "manifest": man,
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

    # ------------------------------------------------------------------ writing
    def register(self, version: str, candidate_dir, manifest: dict) -> tuple[Path, bool]:
        """Publish ``candidate_dir`` as ``models/<version>``. Returns (path, created).

        Idempotent: if the version exists (a retried or cleared task of the same run), it is left as is.
        """
        dest = self.version_dir(version)
        if (dest / "manifest.json").is_file():
            return dest, False
        candidate_dir = Path(candidate_dir)
        missing = [f for f in VERSION_FILES if not (candidate_dir / f).is_file()]
        if missing:
            raise TurkeyError(f"candidate {candidate_dir} is incomplete: missing {', '.join(missing)}")
        self.models.mkdir(parents=True, exist_ok=True)
        tmp = self.models / f".tmp-{safe_name(version)}-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        try:
            for f in VERSION_FILES:
                shutil.copyfile(candidate_dir / f, tmp / f)
            manifest = {**manifest, "version": version, "created_at": manifest.get("created_at") or now_iso()}
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            for p in tmp.iterdir():
                p.chmod(0o444)
            try:
                os.rename(tmp, dest)  # atomic; fails if dest appeared meanwhile
            except OSError:
                if (dest / "manifest.json").is_file():
                    return dest, False
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest, True

    def _append_audit(self, entry: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": now_iso(), **entry}, sort_keys=True) + "\n"
        with open(self.audit_file, "a", encoding="utf-8") as fh:  # O_APPEND: one write per line
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def promote(self, version: str, reason: str, action: str = "promote", **details) -> dict:
        """Make ``version`` the champion: submissions first, then the pointer, then the audit line."""
        version = self.resolve(version)
        previous = self.champion_version()
        if previous == version and action == "promote":
            return self.champion()  # idempotent retry
        src = self.version_dir(version)
        _atomic_copy(src / "submission.csv", self.submissions / f"{version}.csv")
        _atomic_copy(src / "submission.csv", self.submissions / "latest.csv")
        pointer = {"version": version, "promoted_at": now_iso(), "previous": previous, "reason": reason, **details}
        _atomic_write_text(self.champion_file, json.dumps(pointer, indent=2, sort_keys=True) + "\n")
        self._append_audit({"action": action, "version": version, "previous": previous, "reason": reason, **details})
        return pointer

    def rollback(self, version: str, user: str | None = None) -> dict:
        """Operator override: make an earlier (or any) version the champion again; audited."""
        user = user or os.environ.get("USER") or "unknown"
        return self.promote(version, reason=f"manual promote by {user}", action="rollback", user=user)
