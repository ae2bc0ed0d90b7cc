"""bench.recipe_sweep: every candidate pins every setting, the default is marked, the docs table is rewritten."""

from __future__ import annotations

import pytest

from bench import recipe_sweep


def test_every_candidate_pins_every_setting_but_the_seed():
    from ml.config import Recipe

    fields = set(Recipe.__dataclass_fields__) - {"name", "seed", "mixed_precision"}
    for _, _, candidates in recipe_sweep.GROUPS.values():
        for preset, over in candidates.values():
            assert preset == "seed" or set(over) == fields, sorted(fields - set(over))


def test_exactly_one_selection_candidate_is_the_current_default():
    _, _, candidates = recipe_sweep.GROUPS["selection"]
    assert [k for k, v in candidates.items() if recipe_sweep.is_default(*v)] == ["keep best val loss"]


def _runs(auc):
    return [{"seed": s, "val": {"accuracy": 0.95, "passes_gate": True}, "train_seconds": 20.0,
             "holdout": {"roc_auc": auc + d, "accuracy": 0.94, "ece": 0.03, "best_accuracy": 0.95}}
            for s, d in ((42, 0.0), (43, 0.002))]


def test_the_table_marks_the_default_and_shows_the_worst_seed():
    table = recipe_sweep.render("selection", {"presence": {"keep best val loss": _runs(0.96),
                                                           "keep best val AUC (before)": _runs(0.95)}})
    rows = table.splitlines()[2:]
    assert "**keep best val loss (the default)**" in rows[0] and "0.9610 ± 0.0014" in rows[0] and "0.9600 / 0.9400" in rows[0]
    assert "(the default)" not in rows[1] and "| 2/2 (worst 0.9500) |" in rows[1]


def test_write_docs_replaces_only_the_groups_block(tmp_path):
    doc = tmp_path / "model.md"
    doc.write_text("a\n<!-- recipe-sweep:batch -->\nold\n<!-- /recipe-sweep:batch -->\nb\n")
    recipe_sweep.write_docs("batch", "| t |", "note", doc)
    assert doc.read_text() == "a\n<!-- recipe-sweep:batch -->\nnote\n\n| t |\n<!-- /recipe-sweep:batch -->\nb\n"
    with pytest.raises(SystemExit, match="no <!-- recipe-sweep:selection -->"):
        recipe_sweep.write_docs("selection", "| t |", "note", doc)


def test_docs_model_md_has_every_groups_markers():
    text = recipe_sweep.DOCS.read_text(encoding="utf-8")
    for group in recipe_sweep.GROUPS:
        assert f"<!-- recipe-sweep:{group} -->" in text and f"<!-- /recipe-sweep:{group} -->" in text
