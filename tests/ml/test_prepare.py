"""The repeatable split by record identity (issue 9.1): roles never move as data grows or is reordered."""

import numpy as np
import pytest

from ml.errors import TurkeyError
from ml.prepare import role_scores, split_roles


def _ids(n, start=0):
    return np.array([f"vid{i:07d}" for i in range(start, start + n)], dtype=object)


def test_adding_and_reordering_records_never_moves_an_old_record():
    rng = np.random.default_rng(0)
    ids, y = _ids(800), (rng.random(800) < 0.4).astype(int)
    tr, va = split_roles(ids, y, 0.25)
    role = {i: "val" for i in ids[va]} | {i: "train" for i in ids[tr]}
    grown_ids = np.concatenate([ids, _ids(700, start=10_000)])
    grown_y = np.concatenate([y, (rng.random(700) < 0.4).astype(int)])
    order = rng.permutation(len(grown_ids))
    tr2, va2 = split_roles(grown_ids[order], grown_y[order], 0.25)
    role2 = {i: "val" for i in grown_ids[order][va2]} | {i: "train" for i in grown_ids[order][tr2]}
    assert all(role2[i] == r for i, r in role.items())
    assert not set(tr2) & set(va2) and len(tr2) + len(va2) == len(grown_ids)


def test_split_shares_and_class_presence():
    rng = np.random.default_rng(1)
    ids, y = _ids(4000), (rng.random(4000) < 0.4).astype(int)
    tr, va = split_roles(ids, y, 0.25)
    assert abs(len(va) / len(ids) - 0.25) < 0.02
    for cls in (0, 1):  # each class sends ~25% of its records to validation
        share = (y[va] == cls).sum() / (y == cls).sum()
        assert abs(share - 0.25) < 0.03
    # all clips of one video share a role
    dup_ids = np.concatenate([ids[:50], ids[:50]])
    _, va_dup = split_roles(dup_ids, np.zeros(100, int) | (np.arange(100) % 2), 0.5)
    in_val = set(va_dup)
    assert all((i in in_val) == (i + 50 in in_val) for i in range(50))
    # a larger share only adds validation records
    _, va30 = split_roles(ids, y, 0.30)
    assert set(va) <= set(va30)


def test_split_ignores_labels_and_refuses_a_class_without_validation_records():
    scores = role_scores(_ids(200))
    assert ((scores >= 0) & (scores < 1)).all()
    ids = _ids(200)
    # relabelling (both classes keep both roles) moves no record
    y_a, y_b = np.arange(200) % 2, (np.arange(200) // 2) % 2
    tr_a, va_a = split_roles(ids, y_a, 0.25)
    tr_b, va_b = split_roles(ids, y_b, 0.25)
    assert list(tr_a) == list(tr_b) and list(va_a) == list(va_b)
    y = np.zeros(200, int)
    train_only = [i for i, s in enumerate(scores) if s >= 0.25][:3]  # three positives, all in training
    y[train_only] = 1
    with pytest.raises(TurkeyError, match=r"train\.json: class is_turkey=1 has 3 record\(s\).*validation share"):
        split_roles(ids, y, 0.25, source="train.json")
    with pytest.raises(TurkeyError, match="val_fraction"):
        split_roles(ids, y, 1.0)
