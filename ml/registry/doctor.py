"""Checking and repairing the registry: :class:`Doctor` (``turkey models doctor [--repair]``).

Damage: a pointer that exists but cannot be read, or names a missing or incomplete version, raises
:class:`ml.errors.RegistryDamaged` naming the file and ``turkey models doctor --repair`` -- never "no
champion". :meth:`Doctor.doctor` checks everything (pointer, latest.csv, every version against its
manifest hashes, the audit chain, unfinished promotions, orphaned temporary files) and repairs what can be
repaired safely, each repair audited.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import shutil
import time
from datetime import datetime

from ml.errors import RegistryDamaged, TurkeyError
from ml.fsutil import TMP_PREFIX
from ml.registry.common import INTENT_NAME, LEGACY_REQUIRED, POINTER_ACTIONS, REPAIR_HINT, env_float

log = logging.getLogger(__name__)


class Doctor:
    """Checks and repairs of :class:`ml.registry.Registry` (a mixin: it relies on the registry's reading
    methods and its promotion transaction)."""

    def verify_version(self, version: str) -> list[str]:
        """Problems of one version: files missing or changed since register (sha256 against the manifest)."""
        d = self.version_path(version)
        try:
            man = self.manifest(version)
        except RegistryDamaged as exc:
            return [exc.problem]
        files = man.get("files")
        if not isinstance(files, dict):
            return [f"{f} is missing" for f in LEGACY_REQUIRED if not self.fs.isfile(posixpath.join(d, f))]
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
                    self.version_path(v),
                    "; ".join(problems),
                    "immutable version damaged: not repairable; promote another version if it is the champion "
                    "(turkey models promote VERSION) and re-run the pipeline to rebuild it",
                )

        lock = (
            self._locked(timeout=env_float("TURKEY_REGISTRY_LOCK_TIMEOUT_S", 120.0))
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
        src = self.version_path(version, "submission.csv")
        want = self._sha256(src)
        wrong = []
        for path in (self._submission_file(), self._submission_file(version)):
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
