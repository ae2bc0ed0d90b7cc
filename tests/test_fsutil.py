from pathlib import Path

import numpy as np
import pytest

from ml.fsutil import atomic_output, write_json


def test_atomic_output_replaces_on_success_and_leaves_target_on_error(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    with atomic_output(target) as tmp:
        assert tmp.suffix == ".csv" and tmp.parent == target.parent and not target.exists()
        tmp.write_text("new\n")
    assert target.read_text() == "new\n"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert target.read_text() == "new\n"  # the earlier result is not damaged
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temporary left behind


def test_write_json_converts_numpy(tmp_path):
    path = write_json({"b": np.float32(0.5), "a": np.arange(3)}, tmp_path / "m.json")
    assert Path(path).read_text() == '{\n  "a": [\n    0,\n    1,\n    2\n  ],\n  "b": 0.5\n}\n'
