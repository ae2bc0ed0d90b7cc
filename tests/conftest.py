import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(REPO / "plugins"))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """Small demo data set shared by the tests (deterministic)."""
    from ml.demo import generate

    d = tmp_path_factory.mktemp("demo")
    generate(d, train_size=400, test_size=120, seed=7)
    return d
