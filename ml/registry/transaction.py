"""The promotion transaction (promote, rollback, repair) and recorded rejections: :class:`Promotions`.

Promotion is one serialised transaction over several files:

1. take the registry lock (:mod:`ml.registry.lock`); finish any unfinished earlier promotion (roll
   forward, see 3.);
2. read the current pointer (``previous``; compare-and-set when the caller passes ``expect_previous``)
   and write the *intent* ``.promotion-intent.json``: target version, previous, a promotion id, the
   exact pointer and audit entry to write. From here on the promotion is decided;
3. copy ``submissions/<version>.csv`` and ``submissions/latest.csv``, write ``champion.json``, write the
   audit entry under a name derived from the promotion id (so it is written exactly once however often
   this step is replayed), then delete the intent; release the lock.

A crash anywhere in 3. leaves the intent behind; the next promotion, ``turkey models doctor --repair``
or any reader that can take the lock replays 3. from the intent (every step is idempotent), and until
then :meth:`ml.registry.Registry.champion` reports the intent's pointer, so readers of this API never see
the pointer and the audit disagree. A crash before the intent exists changes nothing. Invariant after any
interleaving of promoters and crashes, once recovered: ``champion.json``'s version == the content of
``submissions/latest.csv`` (that version's submission) == the last pointer-changing audit entry's
version, and each audit entry's ``previous`` is the version of the one before it (no lost update). A
version's files are hashed before the lock is taken (versions are immutable), so a slow download does not
hold the lock. Fault points (:mod:`ml.faults`) mark each step for the crash tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import uuid
from datetime import UTC, datetime

from ml.errors import RegistryDamaged, RegistryError, TurkeyError
from ml.faults import fault_point
from ml.registry.common import INTENT_NAME, LOCK_NAME, POINTER_ACTIONS, REPAIR_HINT, env_float, json_bytes, now_iso
from ml.registry.lock import FileLock, ObjectLock

log = logging.getLogger(__name__)

#: ``expect_previous`` not given: promote whatever the champion is.
_ANY = object()


class Promotions:
    """The promotion transaction of :class:`ml.registry.Registry` (a mixin: it relies on the registry's
    storage and reading methods, e.g. ``audit``, ``resolve``, ``missing_files``, ``verify_version``)."""

    def _read_intent(self) -> dict | None:
        """The unfinished promotion's intent; None when there is none or it cannot be read."""
        path = self._p(INTENT_NAME)
        if not self.fs.isfile(path):
            return None
        try:
            intent = self._read_json(path)
        except (ValueError, UnicodeDecodeError, FileNotFoundError):
            return None
        return intent if isinstance(intent, dict) and "pointer" in intent else None

    def _locked(self, timeout: float | None = None):
        """The registry lock (see the module docstring)."""
        if timeout is None:
            timeout = env_float("TURKEY_REGISTRY_LOCK_TIMEOUT_S", 120.0)
        if self.local:
            return FileLock(self._p(LOCK_NAME), timeout)
        return ObjectLock(
            self.fs,
            self._p(LOCK_NAME),
            self.display(self._p(LOCK_NAME)),
            timeout,
            env_float("TURKEY_REGISTRY_LOCK_STALE_S", 600.0),
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
        src = self.version_path(version, "submission.csv")
        self._copy_within(src, self._submission_file(version))
        fault_point("promote:after_versioned_csv")
        self._copy_within(src, self._submission_file())
        fault_point("promote:after_latest_csv")
        self._write_bytes(self._p("champion.json"), json_bytes(intent["pointer"]))
        fault_point("promote:after_pointer")
        audit_path = self._p("audit", intent["audit_name"])
        if not self.fs.isfile(audit_path):
            self._write_bytes(audit_path, json_bytes(intent["audit"], indent=None))
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
        self._write_bytes(self._p(INTENT_NAME), json_bytes(intent))
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
            self._write_bytes(self._p("audit", self._next_audit_name(promotion_id)), json_bytes(entry, indent=None))
        return entry
