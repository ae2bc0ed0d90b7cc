"""What every bench module shares: child processes, result lines, statistics, Markdown, headline figures,
machine facts and demo data.

Nothing here imports TensorFlow, Great Expectations or Airflow: the driver stays light and every heavy
measurement runs in a fresh subprocess that pays its own imports.
"""

from __future__ import annotations

import json
import math
import operator
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ml.settings import LIBRARY_ENVIRONMENT, REPO_ROOT

REPO = REPO_ROOT
OUT = REPO / "bench" / "out"  # generated data, logs, work folders (git-ignored)
RESULTS = REPO / "bench" / "results"  # saved results of the checks run apart from make bench (committed)
RESULT_TAG = "BENCH_RESULT "
KAGGLE_TRAIN, KAGGLE_TEST = 1195, 1196
PY = sys.executable


def log(msg: str) -> None:
    """One timestamped progress line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ processes
def child_env(**extra) -> dict:
    """The environment of a measured subprocess: this one's, with bytecode caching allowed, the library
    defaults (:data:`ml.settings.LIBRARY_ENVIRONMENT`) and the virtualenv's bin first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name, value in LIBRARY_ENVIRONMENT.items():
        env.setdefault(name, value)
    env["PATH"] = f"{Path(PY).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Proc:
    """A finished child: its command, exit status, wall seconds, peak RSS (``wait4``) and output."""

    cmd: list
    rc: int
    wall: float
    maxrss_mib: float  # of the child itself (ru_maxrss of the reaped process)
    output: str
    started_at: float  # time.time() just before the spawn
    timed_out: bool = False

    def check(self) -> Proc:
        """This process, or a RuntimeError with the output's tail when it failed."""
        if self.rc != 0:
            why = " (timed out)" if self.timed_out else ""
            raise RuntimeError(f"{' '.join(map(str, self.cmd[:6]))} ... exited with {self.rc}{why}:\n{self.output[-2500:]}")
        return self

    def result(self) -> dict:
        """The JSON of the child's last ``BENCH_RESULT`` line."""
        return parse_result(self.output)


def run_proc(cmd, *, env=None, timeout: float = 1800, log_path=None) -> Proc:
    """Run ``cmd`` from the repository root to completion in its own session (killed with its group after
    ``timeout``): wall time, the child's own peak RSS from ``wait4``, output captured (and kept in ``log_path``)."""
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w+b") if log_path else tempfile.TemporaryFile() as fh:
        started_at, t0 = time.time(), time.perf_counter()
        p = subprocess.Popen([str(c) for c in cmd], env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                             start_new_session=True)
        timed_out = False
        while not (reaped := os.wait4(p.pid, os.WNOHANG))[0]:
            if not timed_out and time.perf_counter() - t0 > timeout:
                timed_out = True
                os.killpg(p.pid, signal.SIGKILL)  # the group of the process started here
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(reaped[1])
        fh.seek(0)
        output = fh.read().decode("utf-8", "replace")
    return Proc(list(cmd), p.returncode, wall, reaped[2].ru_maxrss / 1024, output, started_at, timed_out)


def emit(result: dict) -> None:
    """Child side: print the result line the driver parses."""
    print(RESULT_TAG + json.dumps(result, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)), flush=True)


def parse_result(output: str) -> dict:
    """The JSON of the last ``BENCH_RESULT`` line of ``output``."""
    lines = [x for x in output.splitlines() if x.startswith(RESULT_TAG)]
    if not lines:
        raise RuntimeError("no result line in the output:\n" + output[-2500:])
    return json.loads(lines[-1][len(RESULT_TAG):])


def run_module(module: str, args: dict, log_path: Path, timeout: float = 1800) -> dict:
    """``python -m module --args JSON`` in a fresh process: its result line, wall time and peak RSS."""
    p = run_proc([PY, "-m", module, "--args", json.dumps(args)], env=child_env(), timeout=timeout,
                 log_path=log_path).check()
    return {**p.result(), "process_wall": p.wall, "peak_rss_mib": p.maxrss_mib}


def child_main(fn, argv=None) -> int:
    """Child side of :func:`run_module`: ``fn(the --args JSON)`` printed as the result line."""
    import argparse

    p = argparse.ArgumentParser(description=(fn.__doc__ or "").splitlines()[0])
    p.add_argument("--args", required=True, help="a JSON object")
    emit(fn(json.loads(p.parse_args(argv).args)))
    return 0


def run_bare(data: dict, out: Path, epochs: int | None, log_path: Path) -> dict:
    """One run of :mod:`bench.bare_pipeline` in a fresh process: wall, peak RSS and its own timers."""
    extra = [] if epochs is None else ["--epochs", str(epochs)]
    p = run_proc([PY, "-m", "bench.bare_pipeline", "--train", data["train"], "--test", data["test"], "--out", out,
                  *extra], env=child_env(), timeout=1200, log_path=log_path).check()
    r = p.result()
    log(f"bare script: {p.wall:.1f}s ({r['epochs_run']} epochs)")
    return {"wall": p.wall, "maxrss_mib": p.maxrss_mib, **r}


# ------------------------------------------------------------------------------------------------ statistics
def median(xs) -> float:
    """The median of the values that are not None (NaN when there are none)."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def mean_sd(xs) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value, NaN for none)."""
    xs = [float(x) for x in xs]
    return (statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0) if xs else (float("nan"),) * 2


# ------------------------------------------------------------------------------------------------ markdown
def fmt(x, digits: int = 2) -> str:
    """A table cell: thousands separators, ``digits`` decimals for floats, a dash for None/NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:,.{digits}f}"


def md_table(headers, rows, align=None) -> str:
    """A GitHub-flavoured Markdown table; cells that are not strings go through :func:`fmt`."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = {"l": ":---", "r": "---:"}
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep[a] for a in align) + " |"]
    for row in rows:
        cells = [(c if isinstance(c, str) else fmt(c)).replace("|", "\\|").replace("\n", " ") for c in row]
        out.append("| " + " | ".join(cells + [""] * (len(headers) - len(cells))) + " |")
    return "\n".join(out)


OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


@dataclass(frozen=True)
class Figure:
    """A headline figure: its name, value and unit, and its target (``value op target``) when it has one.
    ``command``/``when`` say where it came from when that is not the section's own run (a saved result)."""

    name: str
    value: float | None
    unit: str = ""
    op: str | None = None
    target: float | None = None
    digits: int = 2
    command: str | None = None
    when: str | None = None

    def shown(self) -> str:
        """The value with its unit."""
        return fmt(self.value, self.digits) + (f" {self.unit}" if self.unit and self.value is not None else "")

    def target_text(self) -> str:
        """``<= 1.5`` style, or empty without a target."""
        return f"{self.op} {fmt(self.target, self.digits)}{f' {self.unit}' if self.unit else ''}" if self.op else ""

    def verdict(self) -> str:
        """``met`` / ``NOT met`` against the target, ``not measured`` without a value, empty without a target."""
        if not self.op:
            return ""
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return "not measured"
        return "met" if OPS[self.op](self.value, self.target) else "**NOT met**"


def figures_table(figures) -> str:
    """A section's headline figures against their targets."""
    return md_table(["figure", "value", "target", ""], [[f.name, f.shown(), f.target_text(), f.verdict()]
                                                        for f in figures], "lrrl")


# ------------------------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    """CPU model, cores (usable), RAM, OS, Python and the load average now."""
    def first(path, key):
        try:
            return next(x.split(":", 1)[1].strip() for x in Path(path).read_text().splitlines() if x.startswith(key))
        except (OSError, StopIteration):
            return None

    ram = first("/proc/meminfo", "MemTotal")
    return {"cpu": first("/proc/cpuinfo", "model name") or platform.machine(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)), "ram_gib": int(ram.split()[0]) / 2**20 if ram else float("nan"),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "loadavg": list(os.getloadavg())}


PACKAGES = ("turkey-pipeline", "apache-airflow", "tensorflow-cpu", "tensorflow", "keras", "numpy", "scikit-learn",
            "great-expectations")


def git_state() -> str:
    """The short commit, marked when the code (anything but BENCHMARKS.md) has uncommitted changes."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md")
        return git("rev-parse", "--short", "HEAD") + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ------------------------------------------------------------------------------------------------ demo data
GEN_VERSION = 2  # bump when the writer below changes, so cached files are regenerated
CHUNK = 4000  # records per generator


def chunked_records(n: int, seed: int, split_code: int, with_labels: bool, family: str = "presence"):
    """``n`` demo records, generated ``CHUNK`` at a time (each chunk its own generator: seed, split_code, index),
    so :func:`ml.demo.write_json` streams a 100x file with a few chunks in memory, where
    :func:`ml.demo.generate` holds every record. Ids are random per chunk: a clash has probability
    ~n^2 / 64^12 (validation would report it)."""
    import numpy as np

    from ml.demo import make_records

    for i, start in enumerate(range(0, n, CHUNK)):
        rng = np.random.default_rng([seed, split_code, i])
        yield from make_records(min(CHUNK, n - start), rng, with_labels, set(), family=family)


def _cached(meta_path: Path, meta: dict, *files: Path) -> bool:
    try:
        return all(f.is_file() for f in files) and json.loads(meta_path.read_text()) == meta
    except (OSError, ValueError):
        return False


def ensure_demo(n_train: int, n_test: int, seed: int = 0, family: str = "presence") -> dict:
    """Demo train/test files under bench/out/data/, generated once and cached: up to 5,000 records by
    :func:`ml.demo.generate` (at Kaggle size exactly the files ``turkey demo-data`` writes), larger ones from
    :func:`chunked_records`. Returns the paths, sizes and whether the files were cached."""
    from ml.demo import generate, write_json

    k, rest = divmod(n_train, KAGGLE_TRAIN)
    name = (f"kaggle-{k}x" if not rest and n_test == k * KAGGLE_TEST else f"n{n_train}-{n_test}") + (
        "" if family == "presence" else f"-{family}")
    d = OUT / "data" / name
    meta = {"n_train": n_train, "n_test": n_test, "seed": seed, "gen": GEN_VERSION, "family": family}
    train, test = d / "train.json", d / "test.json"
    cached = _cached(d / "meta.json", meta, train, test)
    if not cached:
        t0 = time.perf_counter()
        if max(n_train, n_test) <= 5000:
            generate(d, train_size=n_train, test_size=n_test, seed=seed, family=family)
        else:
            write_json(chunked_records(n_train, seed, 0, True, family), train)
            write_json(chunked_records(n_test, seed, 1, False, family), test)
        (d / "meta.json").write_text(json.dumps(meta))
        log(f"demo data {name}: generated in {time.perf_counter() - t0:.0f}s")
    return {"train": str(train), "test": str(test), **meta, "cached": cached}


def ensure_holdout(train_path, n: int, seed: int = 20260101, family: str = "presence") -> dict:
    """A labelled held-out file from the same generator and ``family``, ids disjoint from ``train_path``'s."""
    import numpy as np

    from ml.demo import make_records, write_json

    train_path = Path(train_path)
    path = train_path.parent / f"holdout-{n}-{seed}.json"
    meta = {"n": n, "seed": seed, "train_size": train_path.stat().st_size, "gen": GEN_VERSION, "family": family}
    if not _cached(path.with_suffix(".meta.json"), meta, path):
        taken = {r["vid_id"] for r in json.loads(train_path.read_text())}
        write_json(make_records(n, np.random.default_rng(seed), True, taken, family=family), path)
        path.with_suffix(".meta.json").write_text(json.dumps(meta))
    return {"path": str(path), **meta}
