"""The rule registry (:mod:`ml.validation.rules`) is the only place a data rule is written: the package
docstring's table, the CLI help, the JSON report's rule list and the expectations all come from it."""

from __future__ import annotations

import pytest

import ml.validation
from ml.cli import _rules_epilog
from ml.expectations import SPLITS, expectations_for
from ml.validation import REGISTRY, RULES
from ml.validation.rules import BY_NAME

CHECKS = {"parse", "gx", "cross-file"}


def _table_rows() -> dict[str, list[str]]:
    """Rule name -> the cells of its row in the package docstring's table."""
    rows = {}
    for line in ml.validation.__doc__.splitlines():
        cells = line.split(None, 4)
        if cells and cells[0] in BY_NAME:
            rows[cells[0]] = cells
    return rows


def test_registry_names_are_unique_and_well_formed():
    names = [r.name for r in REGISTRY]
    assert len(names) == len(set(names)) >= 25
    for r in REGISTRY:
        assert r.kind in ("failure", "warning"), r
        assert r.check in CHECKS, r
        assert set(r.splits) <= set(SPLITS) and r.splits, r
        assert r.text and "\n" not in r.text, r
    assert {r.name: (r.kind, r.text) for r in REGISTRY} == RULES


def test_docstring_table_is_generated_from_the_registry():
    assert "<RULES TABLE>" not in ml.validation.__doc__
    rows = _table_rows()
    assert list(rows) == [r.name for r in REGISTRY]  # every rule, in report order
    for r in REGISTRY:
        assert rows[r.name] == [r.name, r.kind, r.check, "/".join(r.splits), r.text]


def test_cli_epilog_lists_every_rule_with_its_kind_and_text():
    lines = _rules_epilog().splitlines()[1:]
    assert [line.split()[0] for line in lines] == [r.name for r in REGISTRY]
    for line, r in zip(lines, REGISTRY, strict=True):
        assert line.split(None, 2)[1:] == [r.kind, r.text]


@pytest.fixture(scope="module")
def expectations_by_split() -> dict[str, list]:
    return {split: expectations_for(split) for split in SPLITS}


def test_every_expectation_belongs_to_a_registered_rule(expectations_by_split):
    for split, exps in expectations_by_split.items():
        for e in exps:
            r = BY_NAME[e.meta["rule"]]  # KeyError: an unregistered rule
            assert split in r.splits and r.check == "gx", (split, r)
            assert str(e.severity.value) == ("warning" if r.kind == "warning" else "critical"), r
            assert e.description.startswith(f"{r.name}: {r.text}")


def test_every_gx_rule_has_an_expectation_and_every_other_rule_is_checked_elsewhere(expectations_by_split):
    for split, exps in expectations_by_split.items():
        used = {e.meta["rule"] for e in exps}
        wanted = {r.name for r in REGISTRY if r.check == "gx" and split in r.splits}
        assert used == wanted, split
    # the non-GX rules: raised while parsing (ml.json_stream, ml.data) or by the cross-file checks
    import inspect

    from ml import data, json_stream
    from ml.validation import drift

    parsing = inspect.getsource(data) + inspect.getsource(json_stream)
    for r in REGISTRY:
        if r.check == "parse":
            assert f'"{r.name}"' in parsing, r.name
        elif r.check == "cross-file":
            assert f"{r.name}:" in inspect.getsource(drift), r.name
