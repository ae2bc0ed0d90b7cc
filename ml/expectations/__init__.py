"""Expectation suites for the turkey data, kept as code.

The suites run on the *check frame*: one row per record, scalar columns only, derived from
:meth:`ml.data.Records.summary_frame` by :func:`ml.expectations.columns.check_frame` (Great Expectations
misfires on list-of-lists columns, and per-value expectations would be far too slow at 100x Kaggle size).

Every expectation carries ``meta={"rule": <rule name>}``, a registered rule of :mod:`ml.validation.rules`
(whose kind gives the severity: ``critical`` for failures, ``warning`` for warnings, and whose text gives
the description); :mod:`ml.validation` groups results by rule and turns them into failures or warnings.
Several expectations may share one rule (e.g. ``time.numeric`` checks start and end). ``records.min_count`` reads the suite
parameter ``min_records`` at run time, so one suite serves every threshold.

- :mod:`ml.expectations.records` — record rules shared by train and test;
- :mod:`ml.expectations.train`   — record rules plus the label rules;
- :mod:`ml.expectations.test`    — record rules plus the "no label expected" warning.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


def expectations_for(split: str) -> list:
    """Return the list of GX expectation objects for ``split`` (``"train"`` or ``"test"``)."""
    if split == "train":
        from ml.expectations.train import expectations
    elif split == "test":
        from ml.expectations.test import expectations
    else:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return expectations()


def build_suite(split: str):
    """A fresh (unsaved) ``gx.ExpectationSuite`` named ``turkey_<split>``."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(
        name=f"turkey_{split}",
        meta={"notes": f"Data rules for the Kaggle 'Don't call me turkey!' {split} file (ml/expectations/{split}.py)"},
    )
    for exp in expectations_for(split):
        suite.add_expectation(exp)
    return suite
