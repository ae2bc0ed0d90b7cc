"""The ``turkey`` command line: the pipeline without Airflow, and the registry's front door.

Exit codes: 0 success, 1 bad input or a failed gate (one readable line on stderr, no traceback),
2 usage error (argparse: unknown option, bad value, unknown recipe). Any other exception is a bug: it
exits non-zero with its traceback. Defaults come from :mod:`ml.defaults`, shared with the DAG's params.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from ml import defaults
from ml.errors import TurkeyError

log = logging.getLogger(__name__)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_demo_data(a) -> int:
    """``turkey demo-data``: write synthetic Kaggle-format train.json and test.json."""
    from ml.demo import generate

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


#: The ``turkey train`` options recorded as the run's settings, under the DAG's param names.
TRAIN_SETTINGS = ("min_records", "val_fraction", "recipe", *defaults.RECIPE_OVERRIDES, "min_val_accuracy")


def train_params(a) -> dict:
    """``turkey train``'s settings keyed as the DAG's params (``train_file``, ``test_file``, ``recipe``, ...):
    what :func:`ml.defaults.recipe_from_params` and :func:`ml.pipeline.build_manifest` read."""
    return {"train_file": a.train, "test_file": a.test, **{key: getattr(a, key) for key in TRAIN_SETTINGS}}


def cmd_train(a) -> int:
    """``turkey train``: validate, split, pad, train and evaluate into OUT, with the same ``manifest.json``
    a registered version gets (no champion gate); ``--min-val-accuracy`` fails (exit 1) below it."""
    from ml.fsutil import write_json
    from ml.pipeline import build_manifest, evaluate_step, prepare_step, train_step, validate_inputs

    params = train_params(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".work-", dir=out))  # intermediate arrays; removed in any case
    try:
        v = validate_inputs(
            a.train, a.test, work, report_dir=out / "validation", min_records=a.min_records, reject=False
        )
        p = prepare_step(v["train_npz"], v["test_npz"], work, a.val_fraction, source=a.train)
        t = train_step(p["split_npz"], p["test_padded_npz"], out, defaults.recipe_from_params(params), split=p["split"])
        m = evaluate_step(p["split_npz"], t, a.seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(build_manifest(params, v, t, m), out / "manifest.json")
    print(
        f"model {out / 'model.keras'}: validation accuracy {m['val_accuracy']:.4f}, ROC AUC {m['val_auc']:.4f} "
        f"(logistic baseline AUC {m['baseline_logreg']['val_auc']:.4f})"
    )
    if a.min_val_accuracy is not None:
        from ml.pipeline import accuracy_gate

        accuracy_gate(m, a.min_val_accuracy)
    return 0


def cmd_score(a) -> int:
    """``turkey score``: score a test file with a model (file or folder) into a submission CSV."""
    from ml.score import score_file

    path = Path(a.model)
    n = score_file(path / "model.keras" if path.is_dir() else path, a.input, a.output)
    print(f"wrote {a.output} ({n} rows)")
    return 0


def _decision_text(d: dict) -> str:
    """``approved by alice at 2026-...: "comment"`` (a human decision from the audit log)."""
    return f"{d['decision']} by {d.get('by')} at {d.get('at')}" + (f': "{d["comment"]}"' if d.get("comment") else "")


def cmd_models(a) -> int:
    """``turkey models list|show|promote|doctor``: the model registry."""
    from ml.registry import Registry

    reg = Registry(a.artifacts)
    if a.models_cmd == "list":
        rows = reg.list()
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
        info = reg.describe(a.version)
        if a.json:
            _print_json(info)
        else:
            for k in ("version", "is_champion", "model", "submission", "curves"):
                print(f"{k}: {info[k]}")
            gate = info["manifest"].get("gate") or {}
            if gate:
                print(f"gate: {gate.get('decision')} ({gate.get('reason')})")
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
        return 0
    if a.models_cmd == "doctor":
        report = reg.doctor(repair=a.repair, orphan_min_age_s=a.orphan_min_age * 60)
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
        return 0 if report["ok"] else 1
    return 2


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
    """The ``turkey`` argument parser, its defaults from :mod:`ml.defaults`."""
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
    s.add_argument("--min-records", type=_positive_int, default=defaults.MIN_RECORDS,
                   help=f"reject a training file with fewer records (default {defaults.MIN_RECORDS}; like the "
                        "DAG's min_records param it does not apply to test files)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("train", help="validate, split, pad, train and evaluate (no Airflow)")
    s.add_argument("--train", required=True)
    s.add_argument("--test", help="also score this test file into OUT/submission.csv")
    s.add_argument("--out", required=True)
    s.add_argument("--recipe", choices=defaults.recipe_names(), default=defaults.RECIPE,
                   help=f"recipe preset (default {defaults.RECIPE})")
    s.add_argument("--epochs", type=_positive_int, help="override the preset's maximum epochs")
    s.add_argument("--batch-size", type=_positive_int, help="override the preset's batch size")
    s.add_argument("--learning-rate", type=float, help="override the preset's learning rate")
    s.add_argument("--seed", type=int, default=defaults.SEED)
    s.add_argument("--val-fraction", type=_fraction, default=defaults.VAL_FRACTION)
    s.add_argument("--min-records", type=_positive_int, default=defaults.MIN_RECORDS)
    s.add_argument("--min-val-accuracy", type=float, help="fail (exit 1) below this validation accuracy")
    s.add_argument("--mixed-precision", action="store_true", default=defaults.MIXED_PRECISION)
    s.add_argument("--ensemble-seeds", type=_positive_int,
                   help="average this many seeds into the one model (default: the preset's)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("score", help="score a test JSON file with a model into a submission CSV")
    s.add_argument("--model", required=True, help="model.keras or a folder holding it")
    s.add_argument("--input", required=True)
    s.add_argument("--output", required=True)
    s.set_defaults(func=cmd_score)

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
    s.set_defaults(func=cmd_models)
    return p


def main(argv=None) -> int:
    """Run one ``turkey`` command; returns its exit status (0, 1 for TurkeyError or an environment fault,
    2 for usage, 130 on Ctrl-C). Other exceptions propagate: a bug shows its traceback."""
    defaults.set_library_environment()  # before anything imports Great Expectations or TensorFlow
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
