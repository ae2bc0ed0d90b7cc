"""The ``turkey`` command line: the pipeline without Airflow, and the registry's front door.

Exit codes: 0 success, 1 bad input or a failed gate (one readable line on stderr, no traceback),
2 usage error (argparse: unknown option, bad value, unknown recipe). Any other exception is a bug: it
exits non-zero with its traceback. Defaults come from :class:`ml.config.RunConfig`, shared with the DAG's
params.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ml.config import PRESETS, RECIPE_OVERRIDES, RunConfig
from ml.errors import TurkeyError
from ml.evaluate import COMPARISON_METHODS

log = logging.getLogger(__name__)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_demo_data(a) -> int:
    """``turkey demo-data``: write synthetic Kaggle-format train.json and test.json."""
    from ml.demo import generate

    if a.batch:
        from ml.demo import generate_batch

        path = generate_batch(Path(a.out) / f"{a.batch}.json", a.test_size, a.seed, family=a.family)
        print(f"wrote batch {path} ({a.test_size} unlabelled records), {a.family} family")
        return 0
    paths = generate(a.out, a.train_size, a.test_size, a.seed, family=a.family)
    print(
        f"wrote {paths['train']} ({a.train_size} records) and {paths['test']} ({a.test_size} records), "
        f"{a.family} family"
    )
    return 0


def cmd_validate(a) -> int:
    """``turkey validate``: check one file against the data rules (exit 1 with the first broken rule)."""
    from ml.validation import validate_file

    out = validate_file(a.file, a.split, report_dir=a.report, min_records=a.min_records)
    for w in out.warnings:
        print(f"warning: {a.file}: {w}", file=sys.stderr)
    if not out.ok:
        out.raise_for_failures()
    n = len(out.records) if out.records is not None else 0
    print(f"{a.file}: valid {a.split} file, {n} records" + (f"; report {out.report_html}" if out.report_html else ""))
    return 0


#: The ``turkey train`` options that are run settings (:class:`ml.config.RunConfig` fields).
TRAIN_SETTINGS = ("min_records", "val_fraction", "recipe", *RECIPE_OVERRIDES, "min_val_accuracy", "auc_tolerance",
                  "gate_confidence", "gate_method", "min_gate_records", "force_promote")


def train_config(a) -> RunConfig:
    """``turkey train``'s options as the run's :class:`~ml.config.RunConfig` (options left out: the
    defaults the DAG's params have too)."""
    given = {key: getattr(a, key) for key in TRAIN_SETTINGS if getattr(a, key) is not None}
    return RunConfig.from_params({"train_file": a.train, "test_file": a.test, **given})


def cmd_train(a) -> int:
    """``turkey train``: validate, split, pad, train and evaluate into OUT with the same ``manifest.json``
    a registered version gets, and the same gates as the DAG (:mod:`ml.promotion`): the accuracy gate
    (exit 1 below ``--min-val-accuracy``) and, with ``--registry``, the champion/challenger gate against
    that registry's champion; ``--publish`` also registers OUT there and promotes it when the gate says so."""
    from ml import promotion
    from ml.fsutil import write_json
    from ml.manifest import build_manifest
    from ml.pipeline import evaluate_step, prepare_step, train_step, validate_inputs
    from ml.registry import Registry, now_iso

    config = train_config(a)
    registry = Registry(a.registry) if a.registry or a.publish else None
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))  # intermediate arrays; removed in any case
    try:
        champ, problem = promotion.current_champion(registry, config.force_promote) if registry else (None, None)
        reference = promotion.lineage_reference(registry) if champ else None
        compared = promotion.compared_models(registry, champ, reference, work) if registry else {}
        v = validate_inputs(a.train, a.test, work, min_records=config.min_records, report_dir=out / "validation",
                            reject=False)
        p = prepare_step(v["train_npz"], v["test_npz"], work, config.val_fraction, source=a.train)
        t = train_step(p["split_npz"], p["test_padded_npz"], out, config.training_recipe(), compared, split=p["split"])
        t = {**t, "champion_version": champ, "champion_problem": problem, "reference_version": reference}
        m = evaluate_step(p["split_npz"], t, config)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    decision = promotion.decide(registry, config, v, t, m) if registry else None
    run_id = f"cli-{now_iso()}"
    write_json(build_manifest(config, v, t, m, gate=decision, run_id=run_id if a.publish else None),
               out / "manifest.json")
    print(
        f"model {out / 'model.keras'}: validation accuracy {m['val_accuracy']:.4f}, ROC AUC {m['val_auc']:.4f} "
        f"(logistic baseline AUC {m['baseline_logreg']['val_auc']:.4f})"
    )
    promotion.accuracy_gate(m, config.min_val_accuracy)
    if decision is not None:
        print(f"champion gate: {decision['decision']} ({decision['reason']})")
    if a.publish:
        return _publish(registry, out, decision, run_id, a.user)
    return 0


def _publish(registry, out: Path, decision: dict, run_id: str, user: str | None) -> int:
    """``turkey train --publish``: register OUT as a version and promote it when the gate said so."""
    from ml import promotion
    from ml.fsutil import read_json
    from ml.registry import now_iso

    version = promotion.version_for_run(registry, now_iso(), "turkey-cli", run_id)
    path, _ = registry.register(version, out, read_json(out / "manifest.json"))
    print(f"registered {version} at {path}")
    if decision["promote"]:
        pointer = promotion.promote(registry, {**decision, "version": version}, run_id=run_id,
                                    user=user or os.environ.get("USER") or "unknown", via="cli")
        print(f"champion is now {version} (was {pointer.get('previous')})")
    return 0


def cmd_score(a) -> int:
    """``turkey score``: score a test file with a model (file or folder) into a submission CSV."""
    from ml.scoring.predict import score_file

    path = Path(a.model)
    n = score_file(path / "model.keras" if path.is_dir() else path, a.input, a.output)
    print(f"wrote {a.output} ({n} rows)")
    return 0


def cmd_scores(a) -> int:
    """``turkey scores list|backfill``: the published scores of each batch; a what-if scoring with any version."""
    from ml.registry import Registry
    from ml.scoring.store import ScoreStore

    reg = Registry(a.artifacts)
    store = ScoreStore(reg)
    if a.scores_cmd == "list":
        rows = [store.latest(b) | {"scorings": len(store.history(b))} for b in store.batches() if store.latest(b)]
        if a.json:
            _print_json(rows)
            return 0
        for r in rows or []:
            skew = r.get("skew") or {}
            print(f"{r['batch']:<24} {r['version']:<28} {r['rows']:>7} rows  skew excess "
                  f"{skew.get('excess', '-')!s:<8} {r['scored_at']}  {r['path']}")
        if not rows:
            print(f"no published scores under {reg.root}/scores")
        return 0
    from ml.scoring.job import backfill
    from ml.scoring.store import TEST_BATCH

    path = Path(a.file)
    work = Path(tempfile.mkdtemp(prefix="turkey-backfill-"))
    try:
        out = backfill(reg, a.batch or (TEST_BATCH if a.test else path.stem), path, a.version, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"scored {out['batch']} ({out['rows']} rows) with {out['version']}: {out['path']}")
    if out["champion"] and out["champion"] != out["version"]:
        shown = ", ".join(out["flips"][:10]) + (f" and {len(out['flips']) - 10} more" if len(out["flips"]) > 10 else "")
        print(f"{len(out['flips'])} record(s) change class against champion {out['champion']}"
              + (f": {shown}" if out["flips"] else ""))
    return 0


def _decision_text(d: dict) -> str:
    """``approved by alice at 2026-...: "comment"`` (a human decision from the audit log)."""
    return f"{d['decision']} by {d.get('by')} at {d.get('at')}" + (f': "{d["comment"]}"' if d.get("comment") else "")


def cmd_models(a) -> int:
    """``turkey models list|show|promote|doctor|sync-mlflow``: the model registry (and its MLflow mirror)."""
    from ml.registry import Registry
    from ml.registry.doctor import doctor
    from ml.registry.views import describe, version_rows

    reg = Registry(a.artifacts)
    if a.models_cmd == "list":
        rows = version_rows(reg)
        if a.json:
            _print_json(rows)
        elif not rows:
            print(f"no model versions under {reg.models}")
        else:
            print(f"{'version':<28} {'created_at':<28} {'val_acc':>8} {'val_auc':>8}  gate           champion  "
                  "decision")
            for r in rows:
                acc = f"{r['val_accuracy']:.4f}" if r["val_accuracy"] is not None else "-"
                auc = f"{r['val_auc']:.4f}" if r["val_auc"] is not None else "-"
                d = r.get("decision")
                print(
                    f"{r['version']:<28} {str(r['created_at']):<28} {acc:>8} {auc:>8}  {str(r['gate']):<14} "
                    f"{'*' if r['champion'] else '':<8}  {_decision_text(d) if d else '-'}"
                )
        return 0
    if a.models_cmd == "show":
        info = describe(reg, a.version)
        if a.json:
            _print_json(info)
        else:
            for k in ("version", "is_champion", "model", "submission", "curves"):
                print(f"{k}: {info[k]}")
            gate = info["manifest"].get("gate") or {}
            if gate:
                print(f"gate: {gate.get('decision')} ({gate.get('reason')})")
                for role, version, c in (("champion", gate.get("champion_version"), gate.get("comparison")),
                                         ("reference", gate.get("reference_version"), gate.get("reference_comparison"))):
                    if c and c.get("ci_low") is not None:
                        print(f"compared with {role} {version}: difference {c['difference']:+.4f}, "
                              f"{c['confidence']:.0%} CI [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], n={c['n']}")
            for d in info.get("decisions") or []:
                print(f"decision: {_decision_text(d)}")
            print("metrics: " + json.dumps(info["metrics"], sort_keys=True))
            print("manifest: " + json.dumps(info["manifest"], sort_keys=True))
        return 0
    if a.models_cmd == "promote":
        ptr = reg.rollback(a.version, user=a.user, reason=a.reason)
        print(f"champion is now {ptr['version']} (was {ptr['previous']}); recorded in {reg.audit_dir}")
        if ptr.get("repaired_pointer"):
            print(f"repaired: {ptr['repaired_pointer']}")
        _mirror_note(reg)
        return 0
    if a.models_cmd == "sync-mlflow":
        from ml import mlflow_mirror

        with contextlib.redirect_stdout(sys.stderr):  # MLflow prints "View run ..." lines on stdout
            done = mlflow_mirror.sync(reg)
        _print_json(done) if a.json else print(mlflow_mirror.describe(done))
        return 0
    if a.models_cmd == "doctor":
        report = doctor(reg, repair=a.repair, orphan_min_age_s=a.orphan_min_age * 60)
        if a.json:
            _print_json(report)
        else:
            c = report["checked"]
            print(f"registry {reg.root}: {c['versions']} version(s), {c['audit_entries']} audit entr(y/ies), "
                  f"champion {c['champion']}")
            for f in report["findings"]:
                mark = "fixed" if f["repaired"] else "PROBLEM"
                print(f"{mark}: [{f['check']}] {f['path']}: {f['problem']} -> {f['action']}")
            print("ok" if report["ok"] else "problems remain")
        if any(f["repaired"] for f in report["findings"]):
            _mirror_note(reg)
        return 0 if report["ok"] else 1
    return 2


def _mirror_note(reg) -> None:
    """After the champion moved: bring the MLflow mirror up to date (when on; bounded, never fails)."""
    from ml import mlflow_mirror

    out = mlflow_mirror.catch_up(reg)
    if out["status"] != "off":
        print(f"mlflow: {out['status']}" + (f" ({out['reason']}); `turkey models sync-mlflow` catches up"
                                            if out.get("reason") else ""))


def _rules_epilog() -> str:
    from ml.validation import RULES

    width = max(map(len, RULES))
    return "rules:\n" + "\n".join(f"  {name:<{width}}  {kind:<8} {text}" for name, (kind, text) in RULES.items())


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (anything else is a usage error, exit 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (anything else is a usage error, exit 2)."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``turkey`` argument parser, its defaults from :class:`ml.config.RunConfig`."""
    p = argparse.ArgumentParser(prog="turkey", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (one line per epoch when training)")
    sub = p.add_subparsers(dest="cmd", required=True)

    from ml.demo import FAMILIES

    s = sub.add_parser("demo-data", help="write synthetic Kaggle-format train.json/test.json")
    s.add_argument("--out", required=True)
    s.add_argument("--train-size", type=int, default=1195)
    s.add_argument("--test-size", type=int, default=1196)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--family",
        choices=FAMILIES,
        default="presence",
        help="label family: presence (a call pattern in some frames; the default) or temporal (the order of "
        "two events decides, invisible to mean pooling)",
    )
    s.add_argument("--batch", metavar="ID", help="write only one unlabelled batch OUT/ID.json of --test-size clips")
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser(
        "validate",
        help="validate a train/test JSON file",
        description="Validate a train/test JSON file against the data rules (exit 0 valid, 1 invalid, 2 usage).",
        epilog=_rules_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("file")
    s.add_argument("--split", choices=["train", "test"], required=True)
    s.add_argument("--report", help="folder for the Data Docs HTML and JSON summary")
    s.add_argument("--min-records", type=_positive_int, default=RunConfig.model_fields["min_records"].default,
                   help="reject a training file with fewer records (default %(default)s; like the DAG's "
                        "min_records param it does not apply to test files)")
    s.set_defaults(func=cmd_validate)

    d = RunConfig.model_fields
    s = sub.add_parser("train", help="validate, split, pad, train, evaluate and gate (no Airflow)")
    s.add_argument("--train", required=True)
    s.add_argument("--test", help="also score this test file into OUT/submission.csv")
    s.add_argument("--out", required=True)
    s.add_argument("--recipe", choices=sorted(PRESETS), help=f"recipe preset (default {d['recipe'].default})")
    s.add_argument("--epochs", type=_positive_int, help="override the preset's maximum epochs")
    s.add_argument("--batch-size", type=_positive_int, help="override the preset's batch size")
    s.add_argument("--learning-rate", type=float, help="override the preset's learning rate")
    s.add_argument("--seed", type=int, help=f"weights and shuffling (default {d['seed'].default})")
    s.add_argument("--val-fraction", type=_fraction, help=f"validation share (default {d['val_fraction'].default})")
    s.add_argument("--min-records", type=_positive_int, help=f"default {d['min_records'].default}")
    s.add_argument("--min-val-accuracy", type=float,
                   help=f"fail (exit 1) below this validation accuracy (default {d['min_val_accuracy'].default})")
    s.add_argument("--mixed-precision", action="store_true", default=None)
    s.add_argument("--ensemble-seeds", type=_positive_int,
                   help="average this many seeds into the one model (default: the preset's)")
    s.add_argument("--registry", help="compare with this registry's champion (the champion/challenger gate)")
    s.add_argument("--publish", action="store_true",
                   help="register OUT in the registry (--registry, else $TURKEY_REGISTRY_URL or the artifacts "
                        "root) and promote it when the gate says so")
    s.add_argument("--auc-tolerance", type=float, help=f"default {d['auc_tolerance'].default}")
    s.add_argument("--gate-confidence", type=_fraction, help=f"default {d['gate_confidence'].default}")
    s.add_argument("--gate-method", choices=COMPARISON_METHODS, help=f"default {d['gate_method'].default}")
    s.add_argument("--min-gate-records", type=_positive_int, help=f"default {d['min_gate_records'].default}")
    s.add_argument("--force-promote", action="store_true", default=None, help="promote whatever the gate says")
    s.add_argument("--user", help="recorded in the audit entry of a --publish promotion (default: $USER)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("score", help="score a test JSON file with a model into a submission CSV")
    s.add_argument("--model", required=True, help="model.keras or a folder holding it")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("scores", help="batch scores in the registry: list them, or score a batch with any version")
    s.add_argument("--artifacts", help="artifacts root (default: $TURKEY_ARTIFACTS_ROOT or ./artifacts)")
    ss = s.add_subparsers(dest="scores_cmd", required=True)
    x = ss.add_parser("list", help="each batch's published scores: version, rows, skew, when, file")
    x.add_argument("--json", action="store_true")
    x = ss.add_parser("backfill", help="score a batch file with --version into scores/<batch>/<version>.csv "
                      "(published only if it is the champion) and list the records whose class flips against "
                      "the champion's scores")
    x.add_argument("file", help="the batch's JSON file (test-file schema)")
    x.add_argument("--version", default="champion", help="a version, 'champion' or 'latest' (default champion)")
    x.add_argument("--batch", help="the batch id (default: the file's stem)")
    x.add_argument("--test", action="store_true", help="the file is the Kaggle test file (batch kaggle-test)")
    s.set_defaults(func=cmd_scores)

    s = sub.add_parser("models", help="the model registry")
    s.add_argument("--artifacts", help="artifacts root (default: $TURKEY_ARTIFACTS_ROOT or ./artifacts)")
    ms = s.add_subparsers(dest="models_cmd", required=True)
    x = ms.add_parser("list")
    x.add_argument("--json", action="store_true")
    x = ms.add_parser("show")
    x.add_argument("version", help="a version, 'champion' or 'latest'")
    x.add_argument("--json", action="store_true")
    x = ms.add_parser(
        "promote", help="make VERSION the champion (rollback; also replaces a damaged pointer); audited"
    )
    x.add_argument("version")
    x.add_argument("--user", help="recorded in the audit entry (default: $USER)")
    x.add_argument("--reason", help="recorded in the audit entry (default: 'manual promote by USER')")
    x = ms.add_parser(
        "doctor",
        help="check the registry (exit 0 healthy, 1 problems); --repair fixes what is safe",
        description="Check the pointer, submissions/latest.csv, every version against its manifest hashes, "
        "the audit chain, unfinished promotions and orphaned temporary files. --repair finishes an interrupted "
        "promotion, restores a damaged pointer to the last audited intact champion, re-copies a wrong "
        "latest.csv and removes orphans; every pointer fix is audited.",
    )
    x.add_argument("--repair", action="store_true", help="fix what can be fixed safely")
    x.add_argument("--orphan-min-age", type=float, default=60.0, metavar="MINUTES",
                   help="remove only temporary leftovers older than this (default 60; 0 = all)")
    x.add_argument("--json", action="store_true")
    x = ms.add_parser("sync-mlflow", help="mirror the registry into MLflow ($MLFLOW_TRACKING_URI): runs, model "
                      "versions, the champion alias, scoring runs; idempotent (docs/mlflow.md)")
    x.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_models)
    return p


def main(argv=None) -> int:
    """Run one ``turkey`` command; returns its exit status (0, 1 for TurkeyError or an environment fault,
    2 for usage, 130 on Ctrl-C). Other exceptions propagate: a bug shows its traceback."""
    from ml.settings import set_library_environment

    set_library_environment()  # before anything imports Great Expectations or TensorFlow
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if a.verbose or a.cmd == "train" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("great_expectations", "matplotlib", "absl", "tensorflow", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return a.func(a)
    except TurkeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full / read-only / permission denied: one line, exit 1
        from ml.fsutil import as_environment_fault

        print(f"error: {as_environment_fault(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
