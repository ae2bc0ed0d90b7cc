"""bench.gate_chain on the real gate (issue 22): a chain of challengers each slightly worse than the last
loses at most the tolerance under the lineage rule (the per-step rule loses more), and an equally good
challenger is still promoted about as often as under the per-step rule. Seeded: the same figures each run."""

import json

import pytest

from bench import gate_chain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result():
    return gate_chain.simulate(lineages=20, steps=30, seed=1, drifts=(-0.005, 0.0))


def _row(result, rule, drift):
    (r,) = [x for x in next(r for r in result["rules"] if r["name"] == rule)["results"] if x["drift"] == drift]
    return r


def test_a_slowly_worsening_chain_loses_at_most_the_tolerance_under_the_lineage_rule(result):
    tol = result["tolerance"]
    lineage, per_step = _row(result, "lineage", -0.005), _row(result, "per-step", -0.005)
    assert lineage["cumulative_loss_30"] <= tol < per_step["cumulative_loss_30"]
    assert lineage["cumulative_loss_10"] <= tol


def test_an_equally_good_challenger_is_still_promoted(result):
    lineage, per_step = _row(result, "lineage", 0.0), _row(result, "per-step", 0.0)
    assert lineage["promoted_share"] >= 0.85 and per_step["promoted_share"] - lineage["promoted_share"] < 0.1
    assert lineage["cumulative_loss_30"] == per_step["cumulative_loss_30"] == 0.0


def test_the_json_output_has_the_documented_shape(capsys):
    assert gate_chain.main(["--json", "--lineages", "2", "--steps", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"tolerance", "rules"} <= set(out) and [r["name"] for r in out["rules"]] == ["per-step", "lineage"]
    assert [r["default"] for r in out["rules"]] == [False, True]
    row = out["rules"][1]["results"][0]
    assert set(row) == {"drift", "promoted_share", "cumulative_loss_10", "cumulative_loss_30"}
    assert [r["drift"] for r in out["rules"][0]["results"]] == list(gate_chain.DRIFTS)
    assert "| rule |" in gate_chain.table(out)


def test_section_7_renders_the_table_and_judges_the_default_rule(result):
    loss, share = gate_chain.figures(result)
    assert loss.value == _row(result, "lineage", -0.005)["cumulative_loss_30"] and loss.verdict() == "met"
    assert share.value == _row(result, "lineage", 0.0)["promoted_share"] and share.verdict() == ""
    text = gate_chain.render(result)
    assert "**lineage (default)**" in text and "| -0.005 |" in text and "seed 1" in text
