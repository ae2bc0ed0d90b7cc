import json
import os
from pathlib import Path

import pytest

from ml.registry import Registry
from tests.support.candidates import make_candidate, seeded_registry


def test_a_busy_lock_times_out_with_a_clear_error(tmp_path, monkeypatch):
    import fcntl

    from ml.errors import RegistryError

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.2")
    with open(Path(reg.root) / ".registry.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # another promoter holds it (a separate open file description)
        with pytest.raises(RegistryError, match=r"registry is busy: .*\.registry\.lock"):
            reg.promote("v1", reason="x")
    reg.promote("v1", reason="x")  # released: goes through
    assert reg.champion_version() == "v1"


def test_object_store_lock_is_exclusive_and_a_stale_one_is_broken(tmp_path, monkeypatch):
    import fsspec

    from ml.errors import RegistryError

    root = f"memory://lock-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    reg.register("v1", make_candidate(tmp_path, "c1", rows=3), {})
    fs, base = fsspec.core.url_to_fs(root)
    fs.pipe_file(f"{base}/.registry.lock", json.dumps({"token": "other", "at": __import__("time").time()}).encode())
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.2")
    with pytest.raises(RegistryError, match="registry is busy"):
        reg.promote("v1", reason="x")
    fs.pipe_file(f"{base}/.registry.lock", json.dumps({"token": "dead", "at": 0}).encode())  # a dead holder's
    reg.promote("v1", reason="x")
    assert reg.champion_version() == "v1" and not fs.exists(f"{base}/.registry.lock")


def test_a_busy_lock_is_its_own_error_that_tasks_let_airflow_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from ml.errors import RegistryBusy, RegistryError
    from turkey_airflow.tasks import task_body

    reg = seeded_registry(tmp_path, ("v1", "v2"), champion=None)
    monkeypatch.setenv("TURKEY_REGISTRY_LOCK_TIMEOUT_S", "0.1")
    with reg.locked():
        with pytest.raises(RegistryBusy, match="registry is busy"):
            Registry(reg.root).promote("v1", reason="x")
        with pytest.raises(RegistryBusy):  # not AirflowFailException: the task's retries apply
            task_body(lambda: Registry(reg.root).promote("v1", reason="x"))()

    def refused():
        raise RegistryError("the champion changed")

    with pytest.raises(AirflowFailException):  # every other registry refusal still fails at once
        task_body(refused)()


def test_object_store_lock_release_leaves_another_holders_lock(tmp_path):
    import fsspec

    root = f"memory://lock-release-{os.getpid()}-{tmp_path.name}"
    reg = Registry(root)
    fs, base = fsspec.core.url_to_fs(root)
    lock = f"{base}/.registry.lock"
    with reg.locked():
        # our lock was broken as stale meanwhile, and the next promoter took it
        fs.pipe_file(lock, json.dumps({"token": "next-holder", "at": __import__("time").time()}).encode())
    assert json.loads(fs.cat_file(lock))["token"] == "next-holder"  # not deleted by the old holder
    fs.rm_file(lock)
    with reg.locked():
        pass
    assert not fs.exists(lock)  # our own lock is released


def test_object_store_stale_break_spares_a_lock_taken_meanwhile(tmp_path, monkeypatch):
    import fsspec

    from ml.registry.lock import ObjectLock

    root = f"memory://lock-stale-{os.getpid()}-{tmp_path.name}"
    fs, base = fsspec.core.url_to_fs(root)
    lock = f"{base}/.registry.lock"
    fs.pipe_file(lock, json.dumps({"token": "dead", "at": 0}).encode())
    waiter = ObjectLock(fs, lock, lock, timeout=0.3, stale_after=600)
    real_holder = waiter._holder
    seen = []

    def holder_then_replaced():  # between the stale check and the delete, another waiter broke and re-took it
        body = real_holder()
        seen.append(body.get("token"))
        if len(seen) == 1:
            fs.pipe_file(lock, json.dumps({"token": "fresh", "at": __import__("time").time()}).encode())
        return body if len(seen) == 1 else real_holder()

    monkeypatch.setattr(waiter, "_holder", holder_then_replaced)
    from ml.errors import RegistryBusy

    with pytest.raises(RegistryBusy), waiter:
        pass
    assert json.loads(fs.cat_file(lock))["token"] == "fresh"
