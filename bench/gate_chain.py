"""How far a lineage can slide under a gate: many simulated lineages of challengers whose true AUC drifts by
a fixed amount per step, judged by the real gate (:func:`ml.promotion.champion_gate` with
:func:`ml.evaluate.compare_auc`), the per-step rule against the lineage rule::

    python -m bench.gate_chain [--json] [--lineages N] [--steps N] [--seed S]

Each step trains (simulates) one challenger whose true AUC is the previous challenger's plus the drift, and
scores it with the champion (and, for the lineage rule, the reference) on a fresh Kaggle-size gate set of
records neither trained on. Scores follow a binormal model: a model of true AUC ``a`` scores
``sqrt(2) Phi^-1(a) * y + noise``, the noise of two models on the same records correlated (``RHO``), as two
retrains of one architecture are. ``cumulative_loss_K`` is the mean over lineages of (start AUC - the
champion's true AUC after K steps); ``promoted_share`` the share of steps that promoted, at drift 0 how
often an equally good challenger is promoted. ``--json`` prints one JSON object:
``{"tolerance", "confidence", "n_records", "lineages", "steps", "rules": [{"name", "default", "results":
[{"drift", "promoted_share", "cumulative_loss_10", "cumulative_loss_30"}, ...]}, ...]}``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ml.config import RunConfig
from ml.evaluate import compare_auc
from ml.promotion import champion_gate

DRIFTS = (-0.02, -0.01, -0.005, 0.0, 0.005)
START_AUC = 0.96
N_RECORDS = 330  # the gate records of a Kaggle-size run (docs/gate.md)
POSITIVE_SHARE = 0.4
RHO = 0.92  # two retrains' errors correlate so that the interval is as wide as the gate reports (docs/gate.md)
RULES = (("per-step", False), ("lineage", True))


def _scores(true_aucs: list[float], y: np.ndarray, rng) -> list[np.ndarray]:
    """Binormal scores of models with ``true_aucs`` on labels ``y``, errors correlated by :data:`RHO`."""
    from scipy.stats import norm

    shared = rng.standard_normal(len(y))
    return [np.sqrt(2.0) * norm.ppf(min(a, 0.9999)) * y + np.sqrt(RHO) * shared
            + np.sqrt(1 - RHO) * rng.standard_normal(len(y)) for a in true_aucs]


def _comparison(y, challenger, other, confidence) -> dict:
    return compare_auc(y, challenger, other, "delong", confidence) | {"n_excluded_champion_trained": 0}


def lineage(rule: str, drift: float, steps: int, rng, tolerance: float, confidence: float,
            min_records: int) -> tuple[list[float], int]:
    """One lineage under ``rule``: the champion's true AUC after each step, and how many steps promoted."""
    truth = {"v0": START_AUC}
    champion, reference, promoted, path = "v0", "v0", 0, []
    for k in range(1, steps + 1):
        name = f"v{k}"
        truth[name] = START_AUC + drift * k
        y = (rng.random(N_RECORDS) < POSITIVE_SHARE).astype(int)
        models = [name, champion] + ([reference] if rule == "lineage" and reference != champion else [])
        scores = dict(zip(models, _scores([truth[m] for m in models], y, rng), strict=True))
        metrics = {"val_auc": 0.0, "champion_comparison": _comparison(y, scores[name], scores[champion], confidence)}
        if reference in scores and reference != champion:
            metrics["reference_comparison"] = _comparison(y, scores[name], scores[reference], confidence)
        decision = champion_gate(metrics, champion, tolerance, min_records=min_records,
                                 reference_version=reference if rule == "lineage" else None)
        if decision["promote"]:
            promoted += 1
            champion = name
            if rule == "lineage":
                reference = name if decision["reference_after"] == "challenger" else decision["reference_after"]
        path.append(truth[champion])
    return path, promoted


def simulate(lineages: int = 200, steps: int = 30, seed: int = 0, drifts=DRIFTS) -> dict:
    """The table of :data:`RULES` x :data:`DRIFTS` (see the module docstring), with the gate's defaults."""
    import logging

    logging.getLogger("ml.promotion").setLevel(logging.WARNING)  # one log line per decision otherwise
    defaults = RunConfig()
    tol, conf, min_records = defaults.auc_tolerance, defaults.gate_confidence, defaults.min_gate_records
    rules = []
    for name, default in RULES:
        results = []
        for drift in drifts:
            rng = np.random.default_rng([seed, int(round(drift * 1e4)) + 1000])
            paths, promoted = [], 0
            for _ in range(lineages):
                path, n = lineage(name, drift, steps, rng, tol, conf, min_records)
                paths.append(path)
                promoted += n
            paths = np.asarray(paths)
            loss = {f"cumulative_loss_{k}": round(float(START_AUC - paths[:, min(k, steps) - 1].mean()), 4)
                    for k in (10, 30)}
            results.append({"drift": drift, "promoted_share": round(promoted / (lineages * steps), 4), **loss})
        rules.append({"name": name, "default": default, "results": results})
    return {"tolerance": tol, "confidence": conf, "n_records": N_RECORDS, "lineages": lineages, "steps": steps,
            "seed": seed, "rules": rules}


def table(result: dict) -> str:
    """The result as a Markdown table (rules x drifts)."""
    lines = ["| rule | drift per step | promoted share | cumulative AUC lost after 10 steps | after 30 steps |",
             "| :--- | ---: | ---: | ---: | ---: |"]
    for rule in result["rules"]:
        label = f"**{rule['name']} (default)**" if rule["default"] else rule["name"]
        for r in rule["results"]:
            lines.append(f"| {label} | {r['drift']:+.3f} | {r['promoted_share']:.3f} | {r['cumulative_loss_10']:+.4f} "
                         f"| {r['cumulative_loss_30']:+.4f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------- section 7 of bench.run_bench
def collect(cfg: dict) -> dict:
    """Section 7: the simulation (200 lineages of 30 steps; 20 in a quick run), seed 0."""
    return simulate(lineages=20 if cfg.get("tag") == "quick" else 200, steps=30, seed=0)


def figures(result: dict):
    """Section 7's headlines: what the default (lineage) rule loses at drift -0.005 after 30 steps (target: at
    most the tolerance) and how often it promotes an equally good challenger."""
    from bench.common import Figure

    by = {(r["name"], x["drift"]): x for r in result["rules"] for x in r["results"]}
    name = next(r["name"] for r in result["rules"] if r["default"])
    return [Figure("AUC lost after 30 promotions of challengers 0.005 worse each, default rule",
                   by[(name, -0.005)]["cumulative_loss_30"], "", "<=", result["tolerance"], digits=4),
            Figure("share of equally good challengers promoted, default rule", by[(name, 0.0)]["promoted_share"],
                   digits=3)]


def render(result: dict) -> str:
    """Section 7: what the simulation is, then :func:`table`."""
    return "\n".join([
        f"{result['lineages']} simulated lineages of {result['steps']} promotions per drift (seed {result['seed']}), "
        "each challenger's true AUC the previous one's plus the drift, judged by the real gate "
        f"(`ml.promotion.champion_gate`, DeLong, {result['confidence']:.0%} confidence, tolerance "
        f"{result['tolerance']}) on a fresh Kaggle-size gate set of {result['n_records']} records per step. "
        "*per-step*: each challenger against the current champion only (the rule before issue 22); *lineage* "
        "(the default): also against the lineage reference (docs/gate.md). AUC lost after K steps: the start AUC "
        "minus the champion's true AUC, mean over lineages (negative: a gain). Also alone: "
        "`python -m bench.gate_chain` (`--json`).", "", table(result)])


def main(argv=None) -> int:
    """Print the simulation's result (``--json``: one JSON object; else a Markdown table)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--lineages", type=int, default=200)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    result = simulate(a.lineages, a.steps, a.seed)
    print(json.dumps(result) if a.json else table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
