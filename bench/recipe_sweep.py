"""How the default recipe was chosen: small sweeps around it on demo data, scored on held-out files.

    source scripts/env.sh && .venv/bin/python -m bench.recipe_sweep [--group selection|batch] [--write-docs]

Groups (each a table in docs/model.md between ``<!-- recipe-sweep:GROUP -->`` markers, rewritten by
``--write-docs``; without it the table is only printed):

- ``selection`` (the default): which epoch's weights ship (``early_stop_monitor``) and k-seed averaging
  (``ensemble_seeds``), on both demo families, seeds 42-46;
- ``batch``: batch size, input scaling and learning rate, on the presence family, seeds 42-44.

Data and scoring as in BENCHMARKS.md section 3 (:class:`bench.quality.Case`). Only the recipe varies, and
every setting of every candidate is spelled out, so a row stays the same recipe whatever the default is.
An average of k seeds is the mean of its members' probabilities (what :func:`ml.model.average_models`
ships), its members the single models of seeds s..s+k-1, shared between rows; its fit seconds are their
sum. Per-seed results (with the held-out accuracy at a validation-tuned threshold, the evidence for the
0.5 threshold) go to ``bench/out/recipe_sweep-GROUP.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime

import numpy as np

from bench.common import OUT, REPO, git_state, log, machine_info, md_table, mean_sd
from bench.quality import MIN_VAL_ACCURACY, Case

DOCS = REPO / "docs" / "model.md"
S = 1 / 255  # input scaled to [0, 1] inside the model
# Every field pinned: the default preset before issue 15, which all candidates start from.
BASE = {"epochs": 60, "batch_size": 32, "learning_rate": 1e-3, "input_scale": 1.0, "reduce_lr_monitor": "val_loss",
        "reduce_lr_factor": 0.1, "reduce_lr_patience": 3, "min_lr": 1e-6, "early_stop_monitor": "val_auc",
        "early_stop_patience": 10, "early_stop_min_delta": 0.0, "ensemble_seeds": 1}
LOSS = {"early_stop_monitor": "val_loss"}
AUC_LOSS = {"early_stop_monitor": "val_auc_then_loss", "early_stop_min_delta": 0.01}
THREE = {"ensemble_seeds": 3}
# group -> families, seeds, candidates: label -> (preset, overrides)
GROUPS = {
    "selection": (("presence", "temporal"), (42, 43, 44, 45, 46), {
        "keep best val AUC (before)": ("default", BASE),
        "keep best val loss": ("default", {**BASE, **LOSS}),
        "keep best val AUC, within 0.01 ties go to lower val loss": ("default", {**BASE, **AUC_LOSS}),
        "keep best val AUC, average of 3 seeds": ("default", {**BASE, **THREE}),
        "keep best val loss, average of 3 seeds": ("default", {**BASE, **LOSS, **THREE}),
        "keep best val AUC, within 0.01 ties go to lower val loss, average of 3 seeds": ("default",
                                                                                          {**BASE, **AUC_LOSS, **THREE}),
    }),
    "batch": (("presence",), (42, 43, 44), {
        "seed preset (16 epochs, batch 512)": ("seed", {}),
        "seed preset + input scaled to [0, 1]": ("seed", {"input_scale": S}),
        "batch 512, up to 60 epochs, early stopping (+ scaling)": ("default", {**BASE, "batch_size": 512, "input_scale": S}),
        "batch 128 (+ scaling)": ("default", {**BASE, "batch_size": 128, "input_scale": S}),
        "batch 64 (+ scaling)": ("default", {**BASE, "batch_size": 64, "input_scale": S}),
        "batch 64, no scaling": ("default", {**BASE, "batch_size": 64}),
        "batch 64 (+ scaling), early stopping on val_loss": ("default",
                                                              {**BASE, "batch_size": 64, "input_scale": S, **LOSS}),
        "batch 32 (+ scaling)": ("default", {**BASE, "input_scale": S}),
        "batch 32, lr 5e-4 (+ scaling)": ("default", {**BASE, "input_scale": S, "learning_rate": 5e-4}),
        "batch 32, no scaling": ("default", BASE),
        "batch 16 (+ scaling)": ("default", {**BASE, "batch_size": 16, "input_scale": S}),
    }),
}


def run_candidate(case: Case, seed: int, preset: str, over: dict, fits: dict) -> dict:
    """One candidate on one seed; single-model fits are memoised in ``fits`` (members of averages)."""
    from ml.config import make_recipe

    members = []
    for i in range(over.get("ensemble_seeds", 1)):
        rc = make_recipe(preset, **{**over, "seed": seed + i, "ensemble_seeds": 1})
        key = (case.family, json.dumps(rc.to_dict(), sort_keys=True))
        if key not in fits:
            fits[key] = case.train(rc)
            log(f"{case.family} seed {seed + i} {preset} {over}: held-out AUC {fits[key]['holdout']['roc_auc']:.4f}")
        members.append(fits[key])
    out = members[0] if len(members) == 1 else case.average(members)
    return {"seed": seed, **{k: v for k, v in out.items() if not k.startswith("p_")}}


def is_default(preset: str, over: dict) -> bool:
    """Whether a candidate is exactly the current default recipe (its row is marked)."""
    from ml.config import PRESETS, make_recipe

    return make_recipe(preset, **over) == PRESETS["default"]


def render(group: str, results: dict) -> str:
    """The group's table: one row per (family, candidate), mean ± sd and the worst seed."""
    rows = []
    for family, by_label in results.items():
        for label, runs in by_label.items():
            auc, acc = [r["holdout"]["roc_auc"] for r in runs], [r["holdout"]["accuracy"] for r in runs]
            vacc = [r["val"]["accuracy"] for r in runs]
            (a, asd), (c, csd) = mean_sd(auc), mean_sd(acc)
            mark = f"**{label} (the default)**" if is_default(*GROUPS[group][2][label]) else label
            rows.append([family, mark, f"{a:.4f} ± {asd:.4f}", f"{c:.4f} ± {csd:.4f}", f"{min(auc):.4f} / {min(acc):.4f}",
                         f"{sum(r['val']['passes_gate'] for r in runs)}/{len(runs)} (worst {min(vacc):.4f})",
                         f"{np.mean([r['holdout']['ece'] for r in runs]):.4f}",
                         f"{np.mean([r['holdout']['best_accuracy'] for r in runs]):.4f}",
                         f"{np.mean([r['train_seconds'] for r in runs]):.1f}"])
    return md_table(["family", "recipe", "held-out AUC", "held-out accuracy", "worst seed: AUC / accuracy",
                     f"accuracy gate (val ≥ {MIN_VAL_ACCURACY})", "held-out ECE", "best-threshold accuracy",
                     "fit s (mean)"], rows, "ll" + "r" * 7)


def write_docs(group: str, table: str, note: str, path=DOCS) -> None:
    """Replace the table between this group's markers in docs/model.md (an error when they are missing)."""
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- recipe-sweep:{group} -->", f"<!-- /recipe-sweep:{group} -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {start} ... {end} markers")
    path.write_text(pattern.sub(lambda _: f"{start}\n{note}\n\n{table}\n{end}", text, count=1), encoding="utf-8")


def main(argv=None) -> int:
    """Run one group (optionally a subset), print its table, save the per-seed JSON, optionally write the docs."""
    ap = argparse.ArgumentParser(description="recipe sweep on demo data; prints (and optionally writes) a table")
    ap.add_argument("--group", choices=sorted(GROUPS), default="selection")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the group's)")
    ap.add_argument("--families", default=None, help="comma-separated demo families (default: the group's)")
    ap.add_argument("--only", default="", help="only the candidates whose label contains this text")
    ap.add_argument("--write-docs", action="store_true", help="rewrite the group's table in docs/model.md")
    a = ap.parse_args(argv)
    families, seeds, candidates = GROUPS[a.group]
    families = a.families.split(",") if a.families else families
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else seeds
    chosen = {k: v for k, v in candidates.items() if a.only in k}
    t0, fits, results = time.perf_counter(), {}, {}
    for family in families:
        case = Case(family)
        results[family] = {label: [run_candidate(case, s, preset, over, fits) for s in seeds]
                           for label, (preset, over) in chosen.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"recipe_sweep-{a.group}.json").write_text(json.dumps(results, indent=1, default=float))
    table = render(a.group, results)
    m = machine_info()
    cmd = "source scripts/env.sh && .venv/bin/python -m bench.recipe_sweep " + " ".join(sys.argv[1:] if argv is None else argv)
    note = (f"Generated by `{cmd.strip()}` on {datetime.now(UTC):%Y-%m-%d %H:%M UTC} (git {git_state()}, "
            f"{m['usable_cores']} usable cores, load average at the end {', '.join(f'{x:.1f}' for x in m['loadavg'])}; "
            f"{len(fits)} fits in {(time.perf_counter() - t0) / 60:.0f} min). Seeds {', '.join(map(str, seeds))}: mean ± "
            "sample sd; worst seed = the lowest value over seeds; accuracy at the published 0.5 threshold; gate = "
            f"validation accuracy ≥ {MIN_VAL_ACCURACY} (the default `min_val_accuracy`); ECE = expected calibration "
            "error (10 bins); best-threshold accuracy = the most any threshold reaches on the held-out file.")
    print(note + "\n\n" + table)
    if a.write_docs:
        write_docs(a.group, table, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
