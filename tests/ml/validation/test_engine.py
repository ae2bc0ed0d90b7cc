from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import REPO

# ------------------------------------------------------------------------------------- quiet logs
GX_PROBE = r"""
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(message)s")
if sys.argv[1] == "raw":
    import great_expectations  # what happened before: GX imported with INFO logging
else:
    from ml.validation import validate_file
    out = validate_file(sys.argv[2], "train", min_records=1)
    assert not out.ok
"""


def test_validation_does_not_flood_the_log_with_gx_info(tmp_path):
    bad = tmp_path / "train.json"
    bad.write_text(json.dumps([{"vid_id": "a", "start_time_seconds_youtube_clip": 0,
                                "end_time_seconds_youtube_clip": 10, "audio_embedding": [[300] * 128],
                                "is_turkey": 1}]))
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}

    def closures(mode):
        out = subprocess.run([sys.executable, "-c", GX_PROBE, mode, str(bad)], capture_output=True, text=True,
                             env=env, cwd=REPO, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return sum("because it is a closure" in line for line in out.stdout.splitlines())

    assert closures("raw") > 50  # the flood this guards against is real
    assert closures("validate") == 0
