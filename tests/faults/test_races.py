"""Real races: two promoter processes (and, on an object store, two threads) hitting the registry at the
same moment, round after round, with the invariants checked after every round."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading

from ml.registry import POINTER_ACTIONS, Registry
from tests.faults.helpers import check_invariants
from tests.support.candidates import make_candidate, seeded_registry

ROUNDS = 300
VERSIONS = ("v1", "v2", "v3", "v4")


def _act(reg: Registry, rng: random.Random, who: str) -> tuple[str, str | None]:
    """One random registry write, as a DAG's promote task, an operator's rollback or a HITL rejection."""
    v = rng.choice(VERSIONS)
    roll = rng.random()
    if roll < 0.6:
        return "promote", reg.promote(v, reason=f"race {who}", run_id=who)["promotion_id"]
    if roll < 0.9:
        return "rollback", reg.rollback(v, user=who)["promotion_id"]
    return "rejected", reg.record_rejection(v, user=who, reason="race")["promotion_id"]


def _racer(root, who, seed, barrier, results):
    reg, rng = Registry(root), random.Random(seed)
    for _ in range(ROUNDS):
        barrier.wait(timeout=60)  # both racers start the round together
        results.put((who,) + _act(reg, rng, who))
        barrier.wait(timeout=60)  # round over: the parent checks the invariants


def test_two_promoter_processes_race_for_hundreds_of_rounds(tmp_path, ledger):
    reg = seeded_registry(tmp_path, versions=VERSIONS)
    root = reg.base
    initial_ids = {e["promotion_id"] for e in reg.audit()}
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    racers = [ctx.Process(target=_racer, args=(root, f"racer{i}", 100 + i, barrier, results)) for i in (0, 1)]
    for p in racers:
        p.start()
    returned = []
    try:
        for _ in range(ROUNDS):
            barrier.wait(timeout=60)
            barrier.wait(timeout=60)
            returned += [results.get(timeout=60), results.get(timeout=60)]
            ledger.fault("concurrent promotion pair")
            check_invariants(root, ledger.checks)
    finally:
        for p in racers:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in racers] == [0, 0]
    entries = Registry(root).audit()
    new_ids = {e["promotion_id"] for e in entries} - initial_ids
    changes = {pid for _, action, pid in returned if pid not in initial_ids}
    # every write a racer was told about is in the audit exactly once, and nothing else is
    ledger.checks(new_ids == changes, f"audit and racers disagree: {len(new_ids)} vs {len(changes)}")
    moves = [e for e in entries if e["action"] in POINTER_ACTIONS]
    ledger.checks(len({e["previous"] for e in moves[1:]}) > 1 and len(moves) > ROUNDS,
                  "the race did not exercise pointer changes")


def test_threads_race_on_an_object_store(tmp_path, ledger):
    """memory:// stands in for s3://: the lock is a conditionally created object (mode "xb")."""
    import fsspec

    root = f"memory://race-{tmp_path.name}"
    reg = Registry(root)
    for i, v in enumerate(VERSIONS):
        reg.register(v, make_candidate(tmp_path / "cands", v, rows=10 + i), {"run_id": f"run-{v}"})
    reg.promote("v1", reason="initial")
    barrier = threading.Barrier(2)
    errors, returned = [], []

    def racer(seed):
        r, rng = Registry(root), random.Random(seed)
        try:
            for _ in range(100):
                barrier.wait(timeout=60)
                returned.append(_act(r, rng, f"t{seed}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ledger.fault("concurrent promotion pair (object store)", 100)
    assert not errors, errors
    fs, base = fsspec.core.url_to_fs(root)
    entries = reg.audit()
    moves = [e for e in entries if e["action"] in POINTER_ACTIONS]
    for a, b in zip(moves, moves[1:], strict=False):
        ledger.checks(b["previous"] == a["version"], "lost update on the object store")
    pointer = reg.champion()
    ledger.checks(pointer["promotion_id"] == moves[-1]["promotion_id"], "pointer is not the last audited promotion")
    latest = fs.cat_file(f"{base}/submissions/latest.csv")
    ledger.checks(latest == fs.cat_file(f"{base}/models/{pointer['version']}/submission.csv"), "latest.csv disagrees")
    ledger.checks(not fs.exists(f"{base}/.registry.lock"), "lock object left behind")
    ledger.checks(len({e["promotion_id"] for e in entries}) == len(entries), "duplicated audit entry")
