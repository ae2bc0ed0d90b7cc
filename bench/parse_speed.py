"""Parse speed of one train file: the fast reader (in parallel, and in one process) vs the streaming reader,
each in a fresh process.

    source scripts/env.sh && .venv/bin/python bench/parse_speed.py --records 119500   # 100x Kaggle size

Writes demo data of ``--records`` training records (cached under bench/out/parse-<n>/) unless ``--file``
names a file, then prints wall and CPU seconds (this process and its forked workers) and peak RSS (this process;
the largest worker's) of ``ml.data.read_records`` (the fast reader with its default worker processes,
falling back to streaming for anything not well-formed), of ``ml.data_fast.read_records_fast`` in one
process (``workers=1``) and of ``ml.data._read_records_streaming``.
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
from ml import data, data_fast
reader = {"fast": data.read_records, "fast-1-process": lambda p: data_fast.read_records_fast(p, workers=1),
          "streaming": data._read_records_streaming}[sys.argv[2]]
def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
c, t = cpu(), time.perf_counter()
rec = reader(sys.argv[1])
wall = time.perf_counter() - t
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"reader": sys.argv[2], "records": len(rec), "wall_s": round(wall, 2),
                  "cpu_s": round(cpu() - c, 2),
                  "workers": data_fast.parse_workers(len(rec)) if sys.argv[2] == "fast" else 1,
                  "peak_rss_mib": round(own.ru_maxrss / 1024), "worker_peak_rss_mib": round(kids.ru_maxrss / 1024)}))
"""


def main(argv=None) -> int:
    """Measure the readers on one file; print one JSON line per reader."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=119_500, help="demo training records (default: 100x Kaggle)")
    p.add_argument("--file", help="measure this file instead of demo data")
    a = p.parse_args(argv)
    path = Path(a.file) if a.file else REPO / "bench" / "out" / f"parse-{a.records}" / "train.json"
    if not path.is_file():
        from ml.demo import generate

        generate(path.parent, a.records, 10, seed=1)
    for reader in ("fast", "fast-1-process", "streaming"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), reader], capture_output=True, text=True, check=True, cwd=REPO
        )
        print(json.dumps({"file": str(path), **json.loads(out.stdout.strip().splitlines()[-1])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
