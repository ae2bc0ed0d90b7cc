"""Helpers shared by the bench driver and its stage subprocesses: processes, tables, machine facts, demo data.

Nothing here imports TensorFlow, Great Expectations or Airflow: the driver stays light and every heavy
measurement runs in a fresh subprocess that pays its own imports.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ml.defaults import LIBRARY_ENVIRONMENT

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
RESULT_TAG = "BENCH_RESULT "

KAGGLE_TRAIN = 1195
KAGGLE_TEST = 1196


# ------------------------------------------------------------------------------------------------ processes
def child_env(**extra) -> dict:
    """The environment for a measured subprocess: the caller's, with bytecode caching allowed."""
    env = {**os.environ}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name, value in LIBRARY_ENVIRONMENT.items():
        env.setdefault(name, value)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Proc:
    cmd: list
    rc: int | None
    wall: float  # seconds from spawn to reaping
    maxrss_mib: float  # peak RSS of the child (and the grandchildren it waited for), from wait4
    output: str
    started_at: float  # time.time() just before spawn
    timed_out: bool = False

    def result(self) -> dict:
        """The JSON the child printed on its ``BENCH_RESULT`` line (the last one)."""
        return parse_result(self.output)

    def check(self) -> Proc:
        if self.rc != 0:
            raise RuntimeError(
                f"{' '.join(map(str, self.cmd[:6]))} ... exited with {self.rc}"
                + (" (timed out)" if self.timed_out else "")
                + ":\n"
                + self.output[-2500:]
            )
        return self


def run_proc(cmd, *, env=None, timeout: float = 1800, log_path=None, cwd=REPO) -> Proc:
    """Run ``cmd`` to completion; wall time and the child's own peak RSS (``wait4``), output captured."""
    log_path = Path(log_path) if log_path else None
    if log_path:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "w+b")  # noqa: SIM115
    else:
        import tempfile

        fh = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        started_at = time.time()
        t0 = time.perf_counter()
        p = subprocess.Popen(
            [str(c) for c in cmd], env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline and not timed_out:
                timed_out = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # the group of the process we started
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fh.seek(0)
        output = fh.read().decode("utf-8", "replace")
    finally:
        fh.close()
    return Proc(list(cmd), p.returncode, wall, ru.ru_maxrss / 1024, output, started_at, timed_out)


def parse_result(output: str) -> dict:
    lines = [x for x in output.splitlines() if x.startswith(RESULT_TAG)]
    if not lines:
        raise RuntimeError("no result line in the output:\n" + output[-2500:])
    return json.loads(lines[-1][len(RESULT_TAG) :])


def emit(result: dict) -> None:
    """Child side: print the result line the driver parses."""
    print(RESULT_TAG + json.dumps(result, default=_json_default), flush=True)


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM; ru_maxrss where /proc is missing), MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------------ statistics
def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return float("nan")
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def mean_sd(xs) -> tuple[float, float]:
    xs = [float(x) for x in xs]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


# ------------------------------------------------------------------------------------------------ markdown
def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isnan(x):
            return "—"
        return f"{x:,.{digits}f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def md_table(headers, rows, align=None) -> str:
    """A GitHub-flavoured markdown table; cells are formatted with :func:`fmt` unless already strings."""
    cells = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    align = align or ["l"] + ["r"] * (len(headers) - 1)
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep[a] for a in align) + " |"]
    for row in cells:
        row = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        out.append("| " + " | ".join(row + [""] * (len(headers) - len(row))) + " |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "ram_gib": ram / 2**30 if ram else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "loadavg": load,
    }


PACKAGES = (
    "turkey-pipeline",
    "apache-airflow",
    "apache-airflow-providers-standard",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "numpy",
    "pandas",
    "scikit-learn",
    "great-expectations",
    "matplotlib",
)


def package_versions() -> dict:
    from ml.pipeline import package_versions as versions

    return versions(PACKAGES)


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            # BENCHMARKS.md itself is rewritten by the bench, so it does not count as a change to the code
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except Exception:  # noqa: BLE001
        return "unknown"


# ------------------------------------------------------------------------------------------------ demo data
GEN_VERSION = 1  # bump when the generator below changes, so cached files are regenerated
CHUNK = 4000  # records per generator task


def _chunk_text(task) -> str:
    """Records ``n`` of one chunk as JSON text, elements separated like ml.demo.write_json."""
    import numpy as np

    from ml.demo import make_records

    n, seed_seq, with_labels, family = task
    recs = make_records(n, np.random.default_rng(list(seed_seq)), with_labels, set(), family=family)
    return ",\n".join(json.dumps(r, separators=(",", ":")) for r in recs)


def write_records_chunked(
    path, n: int, seed: int, split_code: int, with_labels: bool, workers: int = 2, family: str = "presence"
) -> str:
    """Write ``n`` demo records to ``path`` as one JSON list, generated in seeded chunks by ``workers`` processes.

    Each chunk has its own generator (seed, split_code, chunk index), so the file is the same whatever
    ``workers`` is; records stream to disk in order, so memory stays at a few chunks. Same byte format
    as :func:`ml.demo.write_json`. Ids are random 11-character strings per chunk: a clash between
    chunks has probability ~n^2 / 64^12 (and validation would report it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = [
        (min(CHUNK, n - start), (seed, split_code, i), with_labels, family) for i, start in enumerate(range(0, n, CHUNK))
    ]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("[")
        if workers > 1 and len(tasks) > 1:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                for i, text in enumerate(pool.imap(_chunk_text, tasks)):
                    fh.write((",\n" if i else "") + text)
        else:
            for i, task in enumerate(tasks):
                fh.write((",\n" if i else "") + _chunk_text(task))
        fh.write("]\n")
    os.replace(tmp, path)
    return str(path)


def ensure_demo(name: str, n_train: int, n_test: int, seed: int = 0, workers: int = 2, family: str = "presence") -> dict:
    """Demo train/test files of one label ``family`` (:data:`ml.demo.FAMILIES`) under bench/out/data/<name>/,
    generated once and cached.

    Kaggle size (1,195/1,196, seed 0) is written by :func:`ml.demo.generate` itself, i.e. exactly the
    files ``turkey demo-data`` writes; other sizes by :func:`write_records_chunked`.
    Returns paths, sizes, generation seconds (0 when cached) and whether the files were cached.
    """
    d = OUT / "data" / name
    meta_path = d / "meta.json"
    standard = (n_train, n_test) == (KAGGLE_TRAIN, KAGGLE_TEST) or max(n_train, n_test) <= 5000
    meta = {"n_train": n_train, "n_test": n_test, "seed": seed, "gen": GEN_VERSION, "standard": standard}
    if family != "presence":  # keeps the cache key of files written before there were families
        meta["family"] = family
    train, test = d / "train.json", d / "test.json"
    if meta_path.is_file() and train.is_file() and test.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return {"train": str(train), "test": str(test), **meta, "gen_seconds": 0.0, "cached": True}
        except ValueError:
            pass
    t0 = time.perf_counter()
    if standard:
        from ml.demo import generate

        generate(d, train_size=n_train, test_size=n_test, seed=seed, family=family)
    else:
        write_records_chunked(train, n_train, seed, 0, True, workers, family)
        write_records_chunked(test, n_test, seed, 1, False, workers, family)
    took = time.perf_counter() - t0
    meta_path.write_text(json.dumps(meta))
    return {"train": str(train), "test": str(test), **meta, "gen_seconds": took, "cached": False}


def ensure_holdout(train_path, n: int, seed: int = 20260101, family: str = "presence") -> dict:
    """A labelled held-out file from the same generator and ``family``, with ids disjoint from ``train_path``'s."""
    import numpy as np

    from ml.demo import make_records, write_json

    train_path = Path(train_path)
    path = train_path.parent / f"holdout-{n}-{seed}.json"
    meta_path = path.with_suffix(".meta.json")
    meta = {"n": n, "seed": seed, "train": train_path.name, "train_size": train_path.stat().st_size, "gen": GEN_VERSION}
    if family != "presence":
        meta["family"] = family
    if path.is_file() and meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return {"path": str(path), **meta, "cached": True}
        except ValueError:
            pass
    taken = {r["vid_id"] for r in json.loads(train_path.read_text())}
    write_json(make_records(n, np.random.default_rng(seed), True, taken, family=family), path)
    meta_path.write_text(json.dumps(meta))
    return {"path": str(path), **meta, "cached": False}
