"""Checking and repairing a registry (``turkey models doctor [--repair]``), through the public methods of
:class:`ml.registry.Registry`.

Damage is never "no champion": a pointer that cannot be read, or names a missing or incomplete version,
raises :class:`~ml.errors.RegistryDamaged` everywhere, naming the file and ``turkey models doctor
--repair``. :func:`doctor` checks everything and repairs what can be repaired safely, each pointer fix
audited (action ``repair``, through the promotion transaction).
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import time

from ml.errors import RegistryDamaged, TurkeyError
from ml.fsutil import TMP_PREFIX
from ml.registry.registry import INTENT_NAME, POINTER_ACTIONS, REPAIR_HINT

log = logging.getLogger(__name__)


def orphans(reg, min_age_s: float) -> list[str]:
    """Leftovers of crashed writers older than ``min_age_s`` (fs paths): temporary folders and files, and on
    object stores versions whose upload never reached its manifest (locally a version folder appears whole
    by rename, so a manifest-less one there is damage, not an orphan)."""
    st, now = reg.storage, time.time()

    def old_enough(path: str) -> bool:
        if not (st.isfile(path) or st.isdir(path)):
            return False
        mtime = st.mtime(path)
        return mtime is None or now - mtime >= min_age_s

    found = []
    models = st.path("models")
    for name in st.names(models):
        temporary = name.startswith(".") and ".tmp-" in name
        unfinished = not reg.local and not name.startswith(".") and not st.isfile(posixpath.join(models, name,
                                                                                                  "manifest.json"))
        if (temporary or unfinished) and old_enough(posixpath.join(models, name)):
            found.append(posixpath.join(models, name))
    for folder in (st.base, st.path("submissions"), st.path("audit")):
        found += [posixpath.join(folder, n) for n in st.names(folder)
                  if n.startswith(TMP_PREFIX) and old_enough(posixpath.join(folder, n))]
    return found


def remove_orphans(reg, min_age_s: float = 3600.0) -> list[str]:
    """Remove :func:`orphans` older than ``min_age_s``; returns their display paths. The age threshold keeps
    an upload or copy that is still running elsewhere safe."""
    removed = []
    for path in orphans(reg, min_age_s):
        if reg.storage.isdir(path):
            reg.storage.remove_tree(path)
        else:
            reg.storage.remove(path)
        removed.append(reg.display(path))
        log.info("removed orphan %s", reg.display(path))
    return removed


def doctor(reg, repair: bool = False, orphan_min_age_s: float = 3600.0) -> dict:
    """Check the registry and, with ``repair``, fix what can be fixed safely.

    Checks: an unfinished promotion; ``champion.json`` readable and naming a complete version;
    ``submissions/latest.csv`` equal to the champion's submission (or its scores of the current Kaggle
    test file); every version's files against its
    manifest hashes; the audit log readable and chained (each ``previous`` = the prior ``version``);
    orphans older than ``orphan_min_age_s``. Repairs: finish the unfinished promotion; restore a damaged
    pointer to the last audited champion when that version is intact; re-copy a wrong ``latest.csv``;
    remove orphans. A changed or incomplete version cannot be repaired (it is immutable).

    Returns ``{"ok": bool, "findings": [...], "checked": {...}}``; each finding has ``check``, ``path``,
    ``problem``, ``action`` (what was done or what to do) and ``repaired``.
    """
    findings: list[dict] = []

    def add(check, path, problem, action, repaired=False):
        findings.append({"check": check, "path": reg.display(path), "problem": problem, "action": action,
                         "repaired": repaired})

    versions = reg.versions()
    damaged = {v: problems for v in versions if (problems := reg.verify_version(v))}
    for v, problems in damaged.items():
        add("version", reg.version_path(v), "; ".join(problems),
            "immutable version damaged: not repairable; promote another version if it is the champion "
            "(turkey models promote VERSION) and re-run the pipeline to rebuild it")
    intent_path = reg.storage.path(INTENT_NAME)
    with reg.locked() if repair else contextlib.nullcontext():
        if reg.storage.isfile(intent_path):
            intent = reg.pending_promotion()
            what = f"promotion of {intent['version']} (id {intent['id']})" if intent else "unreadable intent"
            if not repair:
                add("intent", intent_path, f"unfinished {what}", f"run `{REPAIR_HINT}` to finish it")
            else:
                try:
                    reg.roll_forward()
                    add("intent", intent_path, f"unfinished {what}", "finished (rolled forward)", True)
                except RegistryDamaged as exc:
                    reg.discard_pending_promotion()
                    add("intent", intent_path, exc.problem,
                        "discarded: the promotion could not finish; the pointer is checked below", True)
        _check_pointer(reg, add, repair, damaged)
    # outside the lock: reading the audit and deleting old orphans need no exclusion
    _check_audit(reg, add)
    if repair:
        for path in remove_orphans(reg, orphan_min_age_s):
            add("orphan", path, "left by an interrupted writer", "removed", True)
    else:
        for path in orphans(reg, orphan_min_age_s):
            add("orphan", path, "left by an interrupted writer", f"run `{REPAIR_HINT}` to remove it")
    try:
        champion = reg.champion_version()
    except TurkeyError:
        champion = None
    return {"ok": all(f["repaired"] for f in findings), "findings": findings,
            "checked": {"versions": len(versions), "audit_entries": len(reg.audit_names()), "champion": champion}}


def _last_pointer_entry(reg) -> dict | None:
    try:
        return reg.last_pointer_entry()
    except RegistryDamaged:
        return None


def _check_pointer(reg, add, repair: bool, damaged: dict) -> None:
    pointer_path = reg.storage.path("champion.json")
    last = _last_pointer_entry(reg)
    try:
        pointer = reg.read_pointer()
        problem = None
        if pointer is None and last is not None:
            problem = f"missing, but the audit log names {last.get('version')} as champion"
        elif pointer is not None and pointer["version"] in damaged:
            problem = f"names version {pointer['version']}, whose files are damaged"
    except RegistryDamaged as exc:
        pointer, problem = None, exc.problem
    if problem is not None:
        target = last.get("version") if last else None
        usable = target is not None and target in reg.versions() and target not in damaged
        if usable and repair and (pointer is None or pointer.get("version") != target):
            reg.commit(target, target, "repair", f"repaired by turkey models doctor: champion.json {problem}",
                       {"repaired_pointer": f"{reg.display(pointer_path)}: {problem}"})
            add("pointer", pointer_path, problem, f"restored to the last audited champion {target} (audited)", True)
        elif usable and pointer is None:
            add("pointer", pointer_path, problem, f"run `{REPAIR_HINT}` to restore it to {target}")
        else:
            add("pointer", pointer_path, problem, "no intact audited champion to restore: promote a complete "
                "version with `turkey models promote VERSION`")
        return
    if pointer is None:
        return
    from ml.scoring.store import champion_submission_ok

    version = pointer["version"]
    want = reg.storage.sha256(reg.version_path(version, "submission.csv"))
    wrong = []
    for path in (reg.submission_file(), reg.submission_file(version)):
        have = reg.storage.sha256(path) if reg.storage.isfile(path) else None
        # latest.csv may also hold the champion's scores of a newer Kaggle test file (batch scoring)
        ok = have == want or (have is not None and path == reg.submission_file()
                              and champion_submission_ok(reg, version, have))
        if not ok:
            wrong.append((path, "missing" if have is None else f"differs from the champion {version}'s submission"))
    if wrong and repair:  # the promotion transaction re-copies both and re-writes the pointer
        what = "; ".join(f"{posixpath.basename(p)} {problem}" for p, problem in wrong)
        carried = {k: v for k, v in pointer.items()
                   if k not in ("version", "promoted_at", "previous", "reason", "promotion_id")}
        reg.commit(version, version, "repair", f"repaired by turkey models doctor: {what}", carried)
    for path, problem in wrong:
        add("submission", path, problem,
            f"re-copied from {version} (audited)" if repair else f"run `{REPAIR_HINT}` to re-copy it",
            repair)


def _check_audit(reg, add) -> None:
    prior = None
    for path in reg.audit_names():
        try:
            entry = reg.storage.read_json(path)
        except (ValueError, UnicodeDecodeError) as exc:
            add("audit", path, f"unreadable audit entry ({exc})", "not repairable (history); inspect the file")
            continue
        if entry.get("action") not in POINTER_ACTIONS:
            continue
        if prior is not None and entry.get("previous") != prior:
            add("audit", path, f"previous={entry.get('previous')} but the prior audited champion is {prior} "
                "(an update was lost)", "not repairable (history)")
        prior = entry.get("version")
