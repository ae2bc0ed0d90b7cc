"""Shared states, each built once per test session: demo data and one real trained model published into a
registry (``turkey train --publish``). Tests treat them as read-only: a test that changes files works on a
copy (:func:`copy_tree`)."""

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The small, fast recipe the shared model is trained with (3 epochs on 300 records).
TINY_TRAINING = ("--epochs", "3", "--min-records", "50", "--min-val-accuracy", "0.5", "--min-gate-records", "30")


def copy_tree(src: Path, dst: Path) -> Path:
    """A private, writable copy of a shared folder (registry versions are stored read-only)."""
    shutil.copytree(src, dst, symlinks=True)
    for p in dst.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(0o644)
    return dst


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """Small demo data set shared by the tests (deterministic): 400 train / 120 test records."""
    from ml.demo import generate
    from tests.support.shared import built_once

    return built_once(tmp_path_factory, "demo", lambda d: generate(d, train_size=400, test_size=120, seed=7))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, demo_dir):
    """One real ``turkey train --publish`` on the demo data (built once per session): ``model_dir``
    (model.keras, metrics, manifest, submission, record ids, curves), ``registry`` (that model registered
    and promoted: the champion), ``version``, the command's exit ``status`` and its ``log`` lines."""
    import json

    from ml.registry import Registry
    from tests.support.shared import built_once

    def build(root):
        import logging

        from ml import cli

        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())

        logger = logging.getLogger("ml")
        handler, old_level = Keep(logging.INFO), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            status = cli.main(["train", "--train", str(demo_dir / "train.json"), "--test",
                               str(demo_dir / "test.json"), "--out", str(root / "model"), *TINY_TRAINING,
                               "--registry", str(root / "registry"), "--publish", "--user", "tester"])
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
        (root / "run.json").write_text(json.dumps({"status": status, "log": records}))

    root = built_once(tmp_path_factory, "trained", build)
    run = json.loads((root / "run.json").read_text())
    return SimpleNamespace(model_dir=root / "model", registry=root / "registry",
                           version=Registry(root / "registry").champion_version(), **run)
