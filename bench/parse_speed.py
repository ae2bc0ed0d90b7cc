"""Parse speed of one train file: the fast reader vs the streaming reader, each in a fresh process.

    source scripts/env.sh && .venv/bin/python bench/parse_speed.py --records 119500   # 100x Kaggle size

Writes demo data of ``--records`` training records (cached under bench/out/parse-<n>/) unless ``--file``
names a file, then prints CPU and wall seconds and peak RSS of ``ml.data.read_records`` (fast reader,
falling back to streaming for anything not well-formed) and ``ml.data._read_records_streaming``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, resource, sys, time
from ml import data
reader = data.read_records if sys.argv[2] == "fast" else data._read_records_streaming
t, c = time.perf_counter(), time.process_time()
rec = reader(sys.argv[1])
print(json.dumps({"reader": sys.argv[2], "records": len(rec), "wall_s": round(time.perf_counter() - t, 2),
                  "cpu_s": round(time.process_time() - c, 2),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main(argv=None) -> int:
    """Measure both readers on one file; print one JSON line per reader."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=119_500, help="demo training records (default: 100x Kaggle)")
    p.add_argument("--file", help="measure this file instead of demo data")
    a = p.parse_args(argv)
    path = Path(a.file) if a.file else REPO / "bench" / "out" / f"parse-{a.records}" / "train.json"
    if not path.is_file():
        from ml.demo import generate

        generate(path.parent, a.records, 10, seed=1)
    for reader in ("fast", "streaming"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), reader], capture_output=True, text=True, check=True, cwd=REPO
        )
        print(json.dumps({"file": str(path), **json.loads(out.stdout.strip().splitlines()[-1])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
