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

    d = tmp_path_factory.mktemp("demo")
    generate(d, train_size=400, test_size=120, seed=7)
    return d


@pytest.fixture(scope="session")
def trained(tmp_path_factory, demo_dir):
    """One real ``turkey train --publish`` on the demo data, in this process: ``model_dir`` (model.keras,
    metrics, manifest, submission, record ids, curves), ``registry`` (that model registered and promoted:
    the champion), ``version``, the command's exit ``status`` and its ``log`` lines."""
    import logging

    from ml import cli
    from ml.registry import Registry

    root = tmp_path_factory.mktemp("trained")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(logging.INFO)
    logging.getLogger("ml").addHandler(handler)
    old_level = logging.getLogger("ml").level
    logging.getLogger("ml").setLevel(logging.INFO)
    try:
        status = cli.main(["train", "--train", str(demo_dir / "train.json"), "--test", str(demo_dir / "test.json"),
                           "--out", str(root / "model"), *TINY_TRAINING, "--registry", str(root / "registry"),
                           "--publish", "--user", "tester"])
    finally:
        logging.getLogger("ml").removeHandler(handler)
        logging.getLogger("ml").setLevel(old_level)
    reg = Registry(root / "registry")
    return SimpleNamespace(model_dir=root / "model", registry=root / "registry", version=reg.champion_version(),
                           status=status, log=records)
