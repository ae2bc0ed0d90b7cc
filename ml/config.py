"""The run configuration: one typed, frozen model of everything a training run is told.

:class:`RunConfig` holds the inputs, the quality gates, the training recipe, publishing and alerts, each
field with its one default, its bounds and its description. The DAG's ``Param``\\ s are generated from
it (:func:`turkey_airflow.params.dag_params`), the ``turkey train`` options fill it, and the library
takes it whole: :meth:`RunConfig.training_recipe` is the :class:`ml.train.Recipe` that ``fit`` runs.
Deployment settings (paths, retention, lock timeouts) are :mod:`ml.settings`, not part of a run.

A run's settings travel between tasks as the DAG's params (a plain mapping keyed by field name);
:meth:`RunConfig.from_params` turns them back into the model, refusing a bad value with one line.
Nothing here imports TensorFlow or Airflow.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ml.errors import TurkeyError
from ml.evaluate import COMPARISON_METHODS

log = logging.getLogger(__name__)

#: Weights and shuffling (never the split): the run's ``seed`` and every recipe's default.
SEED = 42

#: Which epoch's weights a fit keeps (``Recipe.early_stop_monitor``; applied by :class:`ml.train.EpochSelector`).
EPOCH_CRITERIA = {
    "val_loss": "lowest validation loss (improvement: at least early_stop_min_delta lower)",
    "val_auc": "highest validation AUC (improvement: at least early_stop_min_delta higher)",
    "val_auc_then_loss": (
        "highest validation AUC, but an epoch whose AUC is within early_stop_min_delta of the best so far "
        "replaces it when its validation loss is lower"
    ),
    "val_accuracy": "highest validation accuracy (improvement: at least early_stop_min_delta higher)",
}


# ------------------------------------------------------------------------------------------ the recipe
@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is fitted (:func:`ml.train.fit`): epochs, optimiser,
    learning-rate schedule, epoch selection (``early_stop_*``, see :data:`EPOCH_CRITERIA`), seed,
    precision and the number of ensembled seeds. The field defaults are the ``default`` preset.

    Presets live in :data:`PRESETS`; :func:`make_recipe` builds one with overrides.
    """

    name: str = "default"
    epochs: int = 60
    batch_size: int = 32
    learning_rate: float = 1e-3
    input_scale: float = 1.0
    reduce_lr_monitor: str = "val_loss"
    reduce_lr_factor: float = 0.1
    reduce_lr_patience: int = 3
    min_lr: float = 1e-6
    early_stop_monitor: str = "val_loss"
    early_stop_patience: int = 10
    early_stop_min_delta: float = 0.0
    seed: int = SEED
    mixed_precision: bool = False
    ensemble_seeds: int = 1

    def __post_init__(self):
        if self.early_stop_monitor not in EPOCH_CRITERIA:
            raise ValueError(
                f"unknown early_stop_monitor {self.early_stop_monitor!r}; choose from {', '.join(EPOCH_CRITERIA)}"
            )
        if self.ensemble_seeds < 1:
            raise ValueError(f"ensemble_seeds must be >= 1, got {self.ensemble_seeds}")

    def to_dict(self) -> dict:
        """The recipe as a plain dict (for manifests and logs)."""
        return dataclasses.asdict(self)


#: The named recipes: ``default`` (batch 32, up to 60 epochs, ReduceLROnPlateau(val_loss) and early
#: stopping on validation loss with the kept epoch's weights restored, one model; chosen by
#: ``python -m bench.recipe_sweep``, see docs/model.md) and ``seed`` (the reference tutorial's recipe, kept
#: for comparison: batch 512, 16 epochs -- 32 gradient steps on ~900 records, far from convergence).
PRESETS = {
    "default": Recipe(),
    "seed": Recipe(
        name="seed",
        epochs=16,
        batch_size=512,
        learning_rate=1e-3,
        input_scale=1.0,
        reduce_lr_monitor="val_accuracy",
        reduce_lr_factor=0.1,
        reduce_lr_patience=2,
        min_lr=1e-8,
        early_stop_monitor="val_loss",
        early_stop_patience=20,
    ),
}


def make_recipe(preset: str = "default", **overrides) -> Recipe:
    """A preset with some fields overridden (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown recipe preset {preset!r}; choose from {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown recipe option(s): {sorted(unknown)}")
    return dataclasses.replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


# ------------------------------------------------------------------------------------------ the run

DATA, GATES, RECIPE, PUBLISH, ALERTS = "Input data", "Quality gates", "Training recipe", "Publishing", "Alerts"
#: The recipe fields a run may override (``None``: the preset's value).
RECIPE_OVERRIDES = ("epochs", "batch_size", "learning_rate", "seed", "mixed_precision", "ensemble_seeds")

RecipeName = Literal[tuple(sorted(PRESETS, key=lambda name: (name != "default", name)))]  # type: ignore[valid-type]
GateMethod = Literal[COMPARISON_METHODS]  # type: ignore[valid-type]


def _f(default: Any, section: str, description: str, **bounds) -> Any:
    return Field(default, description=description, json_schema_extra={"section": section}, **bounds)


class _RunSettings(BaseModel):
    """What every run configuration shares: frozen, no unknown fields, built from a run's params."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_params(cls, params: Mapping):
        """The configuration from a run's params (the DAG's, or the CLI's under the same names); keys that
        are not fields are ignored, a bad value is a one-line :class:`~ml.errors.TurkeyError`."""
        known = {k: v for k, v in dict(params).items() if k in cls.model_fields}
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "params"
            raise TurkeyError(f"run setting {where}={err.get('input')!r}: {err['msg']}") from None

    def params(self) -> dict:
        """The configuration as the DAG's params (JSON-able), e.g. for a manifest."""
        return self.model_dump(mode="json")


class RunConfig(_RunSettings):
    """Everything a training run is told, with one default per fact (the DAG's params, by field name)."""

    train_file: Annotated[str, _f("landing/train.json", DATA, "Training JSON, relative to the data root "
                                  "(TURKEY_DATA_ROOT).", min_length=1)]
    test_file: Annotated[str | None, _f("landing/test.json", DATA, "Test JSON to score, relative to the data "
                                        "root (null: none).", min_length=1)]
    min_records: Annotated[int, _f(100, DATA, "Reject a training file with fewer records (test files need one).",
                                   ge=1)]
    min_val_accuracy: Annotated[float, _f(0.85, GATES, "Fail the run (publish nothing) below this validation "
                                          "accuracy.", ge=0, le=1)]
    auc_tolerance: Annotated[float, _f(0.02, GATES, "Promote when, at gate_confidence, the challenger's AUC is not "
                                       "worse than the champion's by more than this (CI lower end of challenger - "
                                       "champion >= -tolerance), on records neither model trained on.", ge=0, le=1)]
    gate_confidence: Annotated[float, _f(0.95, GATES, "Two-sided confidence of the interval on the AUC difference.",
                                         gt=0, lt=1)]
    gate_method: Annotated[GateMethod, _f("delong", GATES, "Paired AUC comparison: DeLong's variance, or a seeded "
                                          "paired bootstrap (2,000 resamples).")]
    min_gate_records: Annotated[int, _f(100, GATES, "Refuse to compare (and so to promote, unless force_promote) "
                                        "when fewer validation records than this were not trained on by the "
                                        "champion.", ge=1)]
    recipe: Annotated[RecipeName, _f("default", RECIPE, "Preset: 'default' (converging recipe) or 'seed' (the "
                                     "tutorial's).")]
    epochs: Annotated[int | None, _f(None, RECIPE, "Override the preset's maximum epochs.", ge=1, le=500)]
    batch_size: Annotated[int | None, _f(None, RECIPE, "Override the preset's batch size.", ge=1, le=8192)]
    learning_rate: Annotated[float | None, _f(None, RECIPE, "Override the preset's Nadam learning rate.", gt=0, le=1)]
    seed: Annotated[int, _f(SEED, RECIPE, "Seed for weight initialisation and shuffling (same data + seed = same "
                            "metrics). The split does not depend on it: a record's role comes from a hash of its "
                            "vid_id.", ge=0)]
    val_fraction: Annotated[float, _f(0.25, RECIPE, "Share of the training file held out for validation (by vid_id "
                                      "hash; both classes must get validation records).", gt=0, lt=1)]
    ensemble_seeds: Annotated[int | None, _f(None, RECIPE, "Override the preset's number of seeds averaged into the "
                                             "one published model (1 = a single model; 3 steadies the worst seed at "
                                             "~3x training time, see docs/model.md).", ge=1, le=10)]
    mixed_precision: Annotated[bool, _f(False, RECIPE, "Train in mixed float16 (useful on a GPU).")]
    force_promote: Annotated[bool, _f(False, PUBLISH, "Operator override: promote even if the champion is better.")]
    require_approval: Annotated[bool, _f(False, PUBLISH, "Wait for a human approval in the UI before promoting.")]
    run_deadline_minutes: Annotated[float, _f(360, ALERTS, "Notify when the run is still unfinished this many "
                                              "minutes after it was queued (0: never). A train task that no worker "
                                              "takes fails after the scheduler's task_queued_timeout and notifies "
                                              "as a failed run.", ge=0)]

    def training_recipe(self) -> Recipe:
        """The :class:`ml.train.Recipe` this run trains with: the preset named by ``recipe`` with the
        :data:`RECIPE_OVERRIDES` that are set."""
        return make_recipe(self.recipe, **{key: getattr(self, key) for key in RECIPE_OVERRIDES})


SCORING = "Scoring"
SkewAction = Literal["warn", "refuse"]


class ScoringConfig(_RunSettings):
    """Everything a scoring run (``turkey_scoring``) is told: which batches, the re-scoring window and what a
    training-serving skew beyond the threshold means. Scoring never trains: there is no recipe here."""

    test_file: Annotated[str | None, _f("landing/test.json", DATA, "The Kaggle test file, scored as batch "
                                        "'kaggle-test' into submissions/latest.csv too (null: none).", min_length=1)]
    batch_dir: Annotated[str, _f("landing/batches", DATA, "Folder of unlabelled batches, one JSON file per batch "
                                 "(the test-file schema; the file stem is the batch id), relative to the data root.",
                                 min_length=1)]
    batches: Annotated[list[str] | None, _f(None, SCORING, "Score only these batch ids (null: every batch that "
                                            "the champion has not scored yet, and the window on a new champion).")]
    rescore_window: Annotated[int, _f(10, SCORING, "When the champion changes, re-score the newest this many "
                                      "batches (and the Kaggle test file) with it.", ge=0)]
    force_rescore: Annotated[bool, _f(False, SCORING, "Score the selected batches again even when the champion "
                                      "already scored their current content.")]
    max_skew: Annotated[float, _f(0.1, SCORING, "Training-serving skew threshold: mean PSI of the batch's "
                                  "mean-pooled frames against the champion's training data, above what sampling "
                                  "noise alone gives (docs/scoring.md).", ge=0)]
    on_skew: Annotated[SkewAction, _f("warn", SCORING, "Beyond max_skew: 'warn' (publish, flagged) or 'refuse' "
                                      "(keep the scores unpublished).")]
