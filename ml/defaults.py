"""The pipeline's settings and their defaults, in one place: the DAG's ``Param``s, the ``turkey`` CLI's
options and the :mod:`ml.pipeline` step signatures all read them from here.

A run's settings travel as one mapping keyed by the DAG's param names (``train_file``, ``min_records``,
``recipe``, ``epochs``, ...): the DAG's ``params``, or the CLI's options under the same names
(:func:`ml.cli.cmd_train`). :func:`recipe_from_params` turns such a mapping into the recipe dict that
:func:`ml.pipeline.train_step` takes, for both. Nothing here imports TensorFlow or Airflow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

# Input data
TRAIN_FILE = "landing/train.json"
TEST_FILE = "landing/test.json"
#: A training file with fewer records is rejected (test files need only one).
MIN_RECORDS = 100

# Quality gates
MIN_VAL_ACCURACY = 0.85
AUC_TOLERANCE = 0.02
GATE_CONFIDENCE = 0.95
GATE_METHOD = "delong"
#: No champion comparison on fewer validation records the champion did not train on.
MIN_GATE_RECORDS = 100

# Training recipe
RECIPE = "default"
SEED = 42
#: Share of the training file held out for validation (by vid_id hash).
VAL_FRACTION = 0.25
MIXED_PRECISION = False
#: The run settings that override fields of the chosen recipe preset (``None``: the preset's value).
RECIPE_OVERRIDES = ("epochs", "batch_size", "learning_rate", "seed", "mixed_precision", "ensemble_seeds")

# Publishing
FORCE_PROMOTE = False
REQUIRE_APPROVAL = False

#: Environment defaults for the libraries a run imports (a value already set is kept): no Great
#: Expectations usage analytics, no TensorFlow C++ start-up chatter.
LIBRARY_ENVIRONMENT = {"GX_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}


def set_library_environment() -> None:
    """Set the :data:`LIBRARY_ENVIRONMENT` defaults. Call it when a run starts (the CLI's ``main``, a task
    body), before Great Expectations or TensorFlow is imported; never at import time."""
    for name, value in LIBRARY_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def recipe_names() -> list[str]:
    """The recipe presets a run may name (``ml.train.PRESETS``), the default first."""
    from ml.train import PRESETS

    return sorted(PRESETS, key=lambda name: (name != RECIPE, name))


def gate_methods() -> list[str]:
    """The paired AUC comparisons the champion gate may use (``ml.evaluate.COMPARISON_METHODS``)."""
    from ml.evaluate import COMPARISON_METHODS

    return list(COMPARISON_METHODS)


def recipe_from_params(params: Mapping) -> dict:
    """The recipe dict for :func:`ml.pipeline.train_step` from a run's settings: the preset named by
    ``recipe`` and the :data:`RECIPE_OVERRIDES` (a missing or ``None`` one keeps the preset's value)."""
    return {"name": params.get("recipe") or RECIPE, **{key: params.get(key) for key in RECIPE_OVERRIDES}}
