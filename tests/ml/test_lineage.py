"""ml.lineage: every version that was ever champion, on one record set none of them trained on."""

import json

import pytest

from ml import lineage
from ml.data import read_records
from ml.prepare import split_and_pad
from ml.registry import Registry
from tests.conftest import copy_tree

pytestmark = pytest.mark.slow


def test_every_champion_is_scored_on_the_records_none_of_them_trained_on(trained, demo_dir, tmp_path):
    reg = Registry(copy_tree(trained.registry, tmp_path / "registry"))
    successor = "v29990101T000000-aaaaaaaa"
    reg.register(successor, trained.model_dir, reg.manifest(trained.version))
    reg.promote(successor, reason="next")
    reg.rollback(trained.version, user="ops")  # a rollback adds no point: it was champion already
    assert [v for v, _ in lineage.champions(reg)] == [trained.version, successor]
    d = split_and_pad(read_records(demo_dir / "train.json"), 0.35)  # a larger validation share than it trained with
    curve = lineage.measure(reg, d["ids_val"], d["x_val"], d["y_val"], tmp_path / "work")
    trained_ids = set(json.loads((trained.model_dir / "record_ids.json").read_text())["train"])
    expected_n = sum(str(i) not in trained_ids for i in d["ids_val"])
    assert curve["n"] == expected_n < len(d["ids_val"])  # records it trained on are left out
    aucs = [p["auc"] for p in curve["points"]]
    assert len(aucs) == 2 and aucs[0] == aucs[1] and 0.5 < aucs[0] <= 1.0  # the same weights, the same records
    lineage.write(reg, curve)
    assert lineage.read(reg) == curve


