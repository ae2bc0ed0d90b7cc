import os
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


def test_environment_errors_become_one_line_faults_and_leave_nothing(tmp_path):
    import errno

    from ml.errors import EnvironmentFault
    from ml.fsutil import atomic_output

    target = tmp_path / "out.bin"
    for code, words in (
        (errno.ENOSPC, "disk full"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
    ):
        with (
            pytest.raises(EnvironmentFault, match=f"^{words} while writing {target}: ") as exc,
            atomic_output(target) as tmp,
        ):
            tmp.write_bytes(b"half")
            raise OSError(code, os.strerror(code))
        assert "\n" not in str(exc.value)
    with pytest.raises(OSError, match="other"), atomic_output(target) as tmp:  # anything else stays itself
        raise OSError(errno.EIO, "other")
    assert list(tmp_path.iterdir()) == []
