"""How the default recipe was chosen: small sweeps around it on demo data, scored on held-out files.

    source scripts/env.sh && .venv/bin/python -m bench.recipe_sweep --write-readme             # epoch selection
    source scripts/env.sh && .venv/bin/python -m bench.recipe_sweep --group batch --write-readme

Groups (each a table in the README, between ``<!-- recipe-sweep:GROUP -->`` markers, rewritten by
``--write-readme``; without it the table is only printed):

- ``selection`` (the default): which epoch's weights ship (``early_stop_monitor``) and k-seed averaging
  (``ensemble_seeds``), on both demo families (``presence`` and ``temporal``), seeds 42-46.
- ``batch``: batch size, input scaling and learning rate, on the presence family, seeds 42-44.

Data and scoring as in BENCHMARKS.md section 3 (:mod:`bench.quality`): Kaggle-size demo train file
(1,195 records) split by the project's split for each seed, a held-out file of 1,196 records no recipe
sees. Architecture fixed (199,179 parameters per model); only the recipe varies, and every setting of
every candidate is spelled out, so a row stays the same recipe whatever the current default is. An
average of k seeds is scored as the mean of its members' probabilities (what
:func:`ml.model.average_models` computes; tests/test_model.py checks that), member 0 being the single
model of the row it extends (members are shared between rows: seed 43 of a row is member 1 of the
average for seed 42), and its fit seconds are the members' sum. Per-seed results go to
``bench/out/recipe_sweep-GROUP.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

import numpy as np

from bench.common import OUT, REPO, git_state, machine_info, md_table, mean_sd
from bench.quality import DEFAULT_MIN_VAL_ACCURACY, Case, score

S = 1 / 255  # input scaled to [0, 1] inside the model
# The recipe all candidates start from, every field pinned (the default preset before issue 15).
BASE = {
    "epochs": 60,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "input_scale": 1.0,
    "reduce_lr_monitor": "val_loss",
    "reduce_lr_factor": 0.1,
    "reduce_lr_patience": 3,
    "min_lr": 1e-6,
    "early_stop_monitor": "val_auc",
    "early_stop_patience": 10,
    "early_stop_min_delta": 0.0,
    "ensemble_seeds": 1,
}
AUC_LOSS = {"early_stop_monitor": "val_auc_then_loss", "early_stop_min_delta": 0.01}
GROUPS = {
    "selection": {
        "families": ("presence", "temporal"),
        "seeds": (42, 43, 44, 45, 46),
        # label -> (preset, overrides); labels match the README's table.
        "candidates": {
            "keep best val AUC (before)": ("default", {**BASE}),
            "keep best val loss": ("default", {**BASE, "early_stop_monitor": "val_loss"}),
            "keep best val AUC, within 0.01 ties go to lower val loss": ("default", {**BASE, **AUC_LOSS}),
            "keep best val AUC, average of 3 seeds": ("default", {**BASE, "ensemble_seeds": 3}),
            "keep best val loss, average of 3 seeds": (
                "default",
                {**BASE, "early_stop_monitor": "val_loss", "ensemble_seeds": 3},
            ),
            "keep best val AUC, within 0.01 ties go to lower val loss, average of 3 seeds": (
                "default",
                {**BASE, **AUC_LOSS, "ensemble_seeds": 3},
            ),
        },
    },
    "batch": {
        "families": ("presence",),
        "seeds": (42, 43, 44),
        "candidates": {
            "seed preset (16 epochs, batch 512)": ("seed", {}),
            "seed preset + input scaled to [0, 1]": ("seed", {"input_scale": S}),
            "batch 512, up to 60 epochs, early stopping (+ scaling)": (
                "default",
                {**BASE, "batch_size": 512, "input_scale": S},
            ),
            "batch 128 (+ scaling)": ("default", {**BASE, "batch_size": 128, "input_scale": S}),
            "batch 64 (+ scaling)": ("default", {**BASE, "batch_size": 64, "input_scale": S}),
            "batch 64, no scaling": ("default", {**BASE, "batch_size": 64}),
            "batch 64 (+ scaling), early stopping on val_loss": (
                "default",
                {**BASE, "batch_size": 64, "input_scale": S, "early_stop_monitor": "val_loss"},
            ),
            "batch 32 (+ scaling)": ("default", {**BASE, "input_scale": S}),
            "batch 32, lr 5e-4 (+ scaling)": ("default", {**BASE, "input_scale": S, "learning_rate": 5e-4}),
            "batch 32, no scaling": ("default", {**BASE}),
            "batch 16 (+ scaling)": ("default", {**BASE, "batch_size": 16, "input_scale": S}),
        },
    },
}


def run_candidate(case: Case, seed: int, preset: str, over: dict, fits: dict) -> dict:
    """Metrics of one candidate on one seed; single-model fits are memoised in ``fits`` for averages."""
    from ml.train import make_recipe

    k = over.get("ensemble_seeds", 1)
    members = []
    for i in range(k):
        rc = make_recipe(preset, **{**over, "seed": seed + i, "ensemble_seeds": 1})
        key = (case.family, json.dumps(rc.to_dict(), sort_keys=True))
        if key not in fits:
            fits[key] = case.train_recipe(rc)
            r = fits[key]
            print(
                f"  {case.family} seed {seed + i} {rc.early_stop_monitor}: "
                f"held-out AUC {r['holdout']['roc_auc']:.4f} acc {r['holdout']['accuracy']:.4f}, "
                f"val acc {r['val']['accuracy']:.4f}, kept epoch {r['selected_epoch']}/{r['epochs']} "
                f"({r['train_seconds']:.0f}s)",
                file=sys.stderr,
                flush=True,
            )
        members.append(fits[key])
    if k == 1:
        out = {key: members[0][key] for key in ("val", "holdout", "epochs", "selected_epoch", "train_seconds")}
    else:
        d = case.split()
        p_val = np.mean([m["p_val"] for m in members], axis=0)
        p_hold = np.mean([m["p_hold"] for m in members], axis=0)
        out = {
            **score(d["y_val"], p_val, case.y_hold, p_hold),
            "epochs": sum(m["epochs"] for m in members),
            "selected_epoch": "+".join(str(m["selected_epoch"]) for m in members),
            "train_seconds": sum(m["train_seconds"] for m in members),
        }
    return {"seed": seed, **out}


def is_default(preset: str, over: dict) -> bool:
    """Whether a candidate is exactly the current default recipe (its row is marked in the table)."""
    from ml.train import PRESETS, make_recipe

    return make_recipe(preset, **over) == PRESETS["default"]


def render(group: str, results: dict) -> str:
    """The README table of one group: one row per (family, candidate), mean ± sd and the worst seed."""
    rows = []
    for family, by_label in results.items():
        for label, runs in by_label.items():
            if is_default(*GROUPS[group]["candidates"][label]):
                label = f"**{label} (the default)**"
            auc = [r["holdout"]["roc_auc"] for r in runs]
            acc = [r["holdout"]["accuracy"] for r in runs]
            vacc = [r["val"]["accuracy"] for r in runs]
            (a, asd), (c, csd) = mean_sd(auc), mean_sd(acc)
            rows.append(
                [
                    family,
                    label,
                    f"{a:.4f} ± {asd:.4f}",
                    f"{c:.4f} ± {csd:.4f}",
                    f"{min(auc):.4f} / {min(acc):.4f}",
                    f"{sum(r['val']['passes_gate'] for r in runs)}/{len(runs)} (worst {min(vacc):.4f})",
                    f"{np.mean([r['holdout']['ece'] for r in runs]):.4f}",
                    f"{np.mean([r['holdout']['best_accuracy'] for r in runs]):.4f}",
                    f"{np.mean([r['train_seconds'] for r in runs]):.1f}",
                ]
            )
    return md_table(
        [
            "family",
            "recipe",
            "held-out AUC",
            "held-out accuracy",
            "worst seed: AUC / accuracy",
            f"accuracy gate (val ≥ {DEFAULT_MIN_VAL_ACCURACY})",
            "held-out ECE",
            "best-threshold accuracy",
            "fit s (mean)",
        ],
        rows,
        align=["l", "l"] + ["r"] * 7,
    )


def write_readme(group: str, table: str, note: str) -> None:
    """Replace the table between this group's markers in README.md (error when the markers are missing)."""
    path = REPO / "README.md"
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- recipe-sweep:{group} -->", f"<!-- /recipe-sweep:{group} -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    block = f"{start}\n{note}\n\n{table}\n{end}"
    path.write_text(pattern.sub(lambda _: block, text, count=1), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="recipe sweep on demo data; prints (and optionally writes) a table")
    ap.add_argument("--group", choices=sorted(GROUPS), default="selection")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default: the group's)")
    ap.add_argument("--families", default=None, help="comma-separated demo families (default: the group's)")
    ap.add_argument("--only", default="", help="run only candidates whose label contains this text")
    ap.add_argument("--write-readme", action="store_true", help="rewrite the group's table in README.md")
    a = ap.parse_args(argv)
    g = GROUPS[a.group]
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else list(g["seeds"])
    families = a.families.split(",") if a.families else list(g["families"])
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    results: dict = {}
    fits: dict = {}
    for family in families:
        case = Case(family)
        results[family] = {}
        for label, (preset, over) in g["candidates"].items():
            if a.only and a.only not in label:
                continue
            results[family][label] = [run_candidate(case, seed, preset, over, fits) for seed in seeds]
            print(f"{family} / {label}: done", file=sys.stderr, flush=True)
    table = render(a.group, results)
    m = machine_info()
    args = sys.argv[1:] if argv is None else list(argv)
    note = (
        f"Generated by `{' '.join(['source scripts/env.sh && .venv/bin/python -m bench.recipe_sweep', *args])}` "
        f"on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} (git {git_state()}, {m['usable_cores']} usable "
        f"cores, load average at the end {', '.join(f'{x:.1f}' for x in m['loadavg'] or [])}; "
        f"{len(fits)} fits in {(time.perf_counter() - t0) / 60:.0f} min). Seeds {', '.join(map(str, seeds))}: "
        f"mean ± sample sd; worst seed = the lowest value over seeds; accuracy at the published 0.5 threshold; "
        f"gate = validation accuracy ≥ {DEFAULT_MIN_VAL_ACCURACY} (the default `min_val_accuracy`); ECE = expected "
        f"calibration error (10 bins); best-threshold accuracy = the most any threshold reaches on the held-out file."
    )
    print(note + "\n\n" + table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"recipe_sweep-{a.group}.json").write_text(json.dumps({"note": note, "results": results}, indent=1, default=str))
    if a.write_readme:
        write_readme(a.group, table, note)
        print(f"rewrote the {a.group} table in README.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
