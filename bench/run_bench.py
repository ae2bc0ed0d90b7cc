"""``make bench``: measure the pipeline and write BENCHMARKS.md.

    source scripts/env.sh && .venv/bin/python -m bench.run_bench                      # everything -> BENCHMARKS.md
    source scripts/env.sh && .venv/bin/python -m bench.run_bench --quick              # tiny sizes: a smoke test
    source scripts/env.sh && .venv/bin/python -m bench.run_bench --sections quality --splice

Each section's module collects plain dicts (saved in bench/out/results-<tag>.json; ``--render-only`` renders
them again), renders its section and names its headline figures; a failing collector is reported and the
others still run. The document is one summary table of every headline figure, then the sections, then the
reliability block of ``make test-faults`` as it was. ``--splice`` replaces only the sections run (and their
summary rows). Only a full run writes BENCHMARKS.md by default; others write bench/out/BENCHMARKS-<tag>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import common, deployed, gate_chain, gpu_check, overhead, quality, scale, scoring
from bench.common import OUT, REPO, md_table

# name -> (number, title, collect, render, figures)
SECTIONS = {
    "overhead": ("1", "Orchestration overhead: bare script vs the whole DAG", overhead.collect_overhead,
                 overhead.render_overhead, overhead.figures_overhead),
    "deployed": ("1b", "Deployed path (CeleryExecutor)", deployed.collect, deployed.render, deployed.figures),
    "scale": ("2", "Scale: 1x, 10x, 100x Kaggle size", scale.collect, scale.render, scale.figures),
    "scale_dag": ("2b", "Scale: the whole DAG at 10x and 100x", overhead.collect_scale_dag, overhead.render_scale_dag,
                  overhead.figures_scale_dag),
    "quality": ("3", "Model quality on held-out demo data", quality.collect, quality.render, quality.figures),
    "gpu": ("4", "GPU training throughput", gpu_check.collect, gpu_check.render_section, gpu_check.figures),
    "scoring": ("6", "Batch scoring: the task body, `make score`, a 100x batch", scoring.collect, scoring.render,
                scoring.figures),
    "skew": ("6b", "Training-serving skew: the threshold's evidence", scoring.collect_skew, scoring.render_skew,
             scoring.figures_skew),
    "gate": ("7", "The champion/challenger gate over a lineage", gate_chain.collect, gate_chain.render,
             gate_chain.figures),
}
SUMMARY_START, SUMMARY_END = "<!-- summary:start -->", "<!-- summary:end -->"
RELIABILITY = ("<!-- reliability:start", "<!-- reliability:end -->")  # tests.faults.summary's markers
HEADING = re.compile(r"^## (\d+[a-z]?)\. ", re.M)


def make_config(quick: bool, repeats: int | None = None) -> dict:
    """Sizes, repeats, epochs and seeds of a full run, or tiny ones for ``--quick``."""
    if quick:
        return {"tag": "quick", "overhead_data": (300, 300), "repeats": repeats or 1, "epochs": 2,
                "scales": [("q300", 300, 300), ("q600", 600, 600)], "dag_scales": [("q300", 300, 300)],
                "seeds": [42], "quality_data": (300, 300), "average_of": 1}
    k1, k2 = common.KAGGLE_TRAIN, common.KAGGLE_TEST
    return {"tag": "full", "overhead_data": (k1, k2), "repeats": repeats or 3, "epochs": None,
            "scales": [(f"{m}x", k1 * m, k2 * m) for m in (1, 10, 100)],
            "dag_scales": [(f"{m}x", k1 * m, k2 * m) for m in (10, 100)],
            "seeds": [42, 43, 44, 45, 46], "quality_data": (k1, k2), "average_of": 3}


def collect(cfg: dict, names, meta: dict, saved: Path) -> dict:
    """Run the sections' collectors in order; results (or the error) saved after each one."""
    results, t0 = {}, time.perf_counter()
    for name in (n for n in SECTIONS if n in names):
        common.log(f"== {SECTIONS[name][0]}. {SECTIONS[name][1]}")
        ts = time.perf_counter()
        try:
            results[name] = {"data": SECTIONS[name][2](cfg)}
        except Exception:  # noqa: BLE001 - recorded; the next section still runs
            results[name] = {"error": traceback.format_exc()}
            common.log(f"section {name} FAILED:\n{results[name]['error'][-1500:]}")
        results[name]["seconds"] = time.perf_counter() - ts
        meta["total_seconds"] = time.perf_counter() - t0
        saved.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    return results


def stamp(meta: dict) -> str:
    """Which run produced a section."""
    load = ", ".join(f"{x:.2f}" for x in meta["machine"]["loadavg"])
    return f"*From `{meta['command']}` on {meta['date']} at git {meta['git']}; load average at start {load}.*"


def summary_rows(name: str, figures, meta: dict) -> list[str]:
    """The summary table's rows of one section (a figure from a saved result carries its own provenance)."""
    when = f"{meta['date']}, git {meta['git']}"
    table = md_table(["§", "figure", "value", "target", "", "command", "when"],
                     [[f"§{SECTIONS[name][0]}", f.name, f.shown(), f.target_text(), f.verdict(),
                       f"`{f.command or meta['command']}`", f.when or when] for f in figures], "llrrlll")
    return table.splitlines()[2:]


def render_section(name: str, res: dict | None, meta: dict) -> tuple[str, list[str]]:
    """A section's Markdown block and its summary rows."""
    number, title, _, render, figures = SECTIONS[name]
    head = [f"## {number}. {title}", "", stamp(meta), ""]
    if res is None or "error" in res:
        err = (res or {}).get("error", "not run").strip()[-3000:]
        return "\n".join(head + ["**This section failed**; the error, as recorded:", "", "```", err, "```"]), []
    try:
        figs = figures(res["data"])
        body = [render(res["data"]), "", "Headline figures:", "", common.figures_table(figs)]
    except Exception:  # noqa: BLE001 - a renderer bug shows, the other sections still render
        return "\n".join(head + ["**Could not render this section**:", "", "```", traceback.format_exc()[-3000:], "```"]), []
    rows = summary_rows(name, figs, meta)
    return "\n".join(head + body + ["", f"<sub>Section wall time: {res['seconds']:.0f} s.</sub>"]), rows


def header(meta: dict) -> str:
    """The title, what the file is, the machine and packages of the latest run."""
    m = meta["machine"]
    return "\n".join([
        "# Benchmarks", "",
        "Written by `python -m bench.run_bench` (`make bench`), not by hand; each section names the run that produced "
        "it (a section rerun on its own with `--splice` says so). Every command runs from the repository root after "
        "`source scripts/env.sh`, with `.venv/bin/python`. Data, logs and work folders are under `bench/out/` "
        "(git-ignored); the saved results of checks run apart from `make bench` are in `bench/results/`.", "",
        f"Latest run: {meta['date']}, {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['ram_gib']:.1f} GiB RAM, {m['os']}, Python {m['python']}; mode {meta['tag']}; "
        + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()) + "."])


def summary(rows: list[str]) -> str:
    """The one summary table, between its markers."""
    head = md_table(["§", "figure", "value", "target", "", "command", "when"], [], "llrrlll")
    return "\n".join([SUMMARY_START, head, *rows, SUMMARY_END])


def render(meta: dict, results: dict) -> str:
    """The whole document from ``meta`` and the collected ``results`` (sections not run are left out)."""
    blocks, rows = [], []
    for name in (n for n in SECTIONS if n in results):
        block, r = render_section(name, results[name], meta)
        blocks.append(block)
        rows += r
    return "\n\n".join([header(meta), summary(rows), *blocks]).rstrip() + "\n"


def _blocks(doc: str) -> dict[str, tuple[int, int]]:
    """Section number -> (start, end) offsets of its block (a block stops at the next heading or the reliability block)."""
    starts = [(m.start(), m.group(1)) for m in HEADING.finditer(doc)]
    stop = doc.find(RELIABILITY[0])
    out = {}
    for i, (a, n) in enumerate(starts):
        e = starts[i + 1][0] if i + 1 < len(starts) else len(doc)
        out[n] = (a, stop if a < stop < e else e)
    return out


def splice(old: str, new: str, names) -> str:
    """``old`` with the header, the ``names`` sections and their summary rows taken from ``new``."""
    numbers = [SECTIONS[n][0] for n in names]
    order = [v[0] for v in SECTIONS.values()]
    key = lambda row: order.index(row.split("|")[1].strip().lstrip("§"))  # noqa: E731
    old_rows = old.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0].splitlines()[3:] if SUMMARY_START in old else []
    new_rows = new.split(SUMMARY_START, 1)[1].split(SUMMARY_END, 1)[0].splitlines()[3:]
    rows = sorted([r for r in old_rows if r.split("|")[1].strip().lstrip("§") not in numbers] + new_rows, key=key)
    first = HEADING.search(old)
    body = old.split(SUMMARY_END, 1)[1] if SUMMARY_END in old else "\n\n" + old[first.start() if first else len(old):]
    new_blocks = _blocks(new)
    for n in sorted(numbers, key=order.index, reverse=True):  # back to front: offsets stay valid
        a, b = new_blocks[n]
        have = _blocks(body)
        if n in have:
            oa, ob = have[n]
        else:  # a section new to the file goes before the next one present (or the reliability block, or the end)
            later = [have[x][0] for x in order[order.index(n) + 1:] if x in have]
            rel = body.find(RELIABILITY[0])
            oa = ob = min(later or ([rel] if rel >= 0 else [len(body)]))
        body = body[:oa] + new[a:b].rstrip("\n") + "\n\n" + body[ob:]
    return header_of(new) + summary(rows) + "\n\n" + body.strip() + "\n"


def header_of(doc: str) -> str:
    """Everything before the summary table."""
    return doc.split(SUMMARY_START, 1)[0]


def keep_reliability(old: str, doc: str) -> str:
    """``doc`` with the reliability block of ``old`` appended when ``doc`` has none."""
    start, end = RELIABILITY
    if start in old and end in old and start not in doc:
        return doc.rstrip("\n") + "\n\n" + start + old.split(start, 1)[1].split(end, 1)[0] + end + "\n"
    return doc


def main(argv=None) -> int:
    """The CLI: collect the chosen sections (or load saved results), render, write or splice the file."""
    p = argparse.ArgumentParser(description="measure the pipeline; write BENCHMARKS.md")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 epochs, 1 repeat (a smoke test)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--repeats", type=int, default=None, help="runs per side in sections 1 and 1b (default 3)")
    p.add_argument("--render-only", action="store_true", help="measure nothing: render bench/out/results-<tag>.json again")
    p.add_argument("--output", default=None, help="the Markdown file to write")
    p.add_argument("--splice", action="store_true", help="replace only the sections run in an existing BENCHMARKS.md")
    args = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(args)
    names = [s.strip() for s in a.sections.split(",") if s.strip()]
    if bad := [s for s in names if s not in SECTIONS]:
        p.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    if a.splice and a.quick:
        p.error("--splice writes into the published file: not with --quick")
    cfg = make_config(a.quick, a.repeats)
    full = not a.quick and set(names) == set(SECTIONS) and not a.repeats
    published = REPO / "BENCHMARKS.md"
    output = Path(a.output) if a.output else (published if full or a.splice else OUT / f"BENCHMARKS-{cfg['tag']}.md")
    from ml.manifest import package_versions

    meta = {"command": "make bench" if os.environ.get("MAKELEVEL") and not args else
            "python -m bench.run_bench " + " ".join(shlex.quote(x) for x in args),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": common.machine_info(),
            "packages": package_versions(common.PACKAGES), "git": common.git_state(),
            "tag": cfg["tag"] + (" (tiny sizes, NOT representative)" if a.quick else "")}
    meta["command"] = meta["command"].strip()
    OUT.mkdir(parents=True, exist_ok=True)
    saved = OUT / f"results-{cfg['tag']}.json"
    if a.render_only:
        if not saved.is_file():
            p.error(f"--render-only: no saved results at {saved}")
        prior = json.loads(saved.read_text())
        meta, results = prior["meta"], {k: v for k, v in prior["results"].items() if k in names}
    else:
        results = collect(cfg, names, meta, saved)
    doc = render(meta, results)
    old = output.read_text(encoding="utf-8") if output.is_file() else ""
    doc = splice(old, doc, [n for n in SECTIONS if n in results]) if a.splice and old else keep_reliability(old, doc)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    tmp.write_text(doc, encoding="utf-8")
    os.replace(tmp, output)
    common.log(f"wrote {output} ({meta.get('total_seconds', 0) / 60:.1f} min)")
    return 0 if all("error" not in r for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
