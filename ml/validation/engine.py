"""The Great Expectations engine: one ephemeral, offline context per process, holding both suites.

Its start-up costs seconds, a validation run a fraction of one, so it is created once (:func:`engine`)
and reused. GX's loggers are held at WARNING while we use it (:func:`quiet_gx_logs`).
"""

from __future__ import annotations

import logging
import threading

from ml.expectations import SPLITS
from ml.settings import set_library_environment

log = logging.getLogger(__name__)

#: GX loggers held at WARNING while we use GX: at INFO, importing GX alone logs ~200 lines of
#: "Skipping registering function ... because it is a closure", which buried a failed task's reason.
GX_LOGGERS = ("great_expectations",)


def quiet_gx_logs() -> None:
    """Hold Great Expectations' loggers at WARNING (called where this package starts GX, not at import)."""
    for name in GX_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET,) or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class Engine:
    """One ephemeral GX context holding the pandas data source and the train and test suites."""

    def __init__(self):
        set_library_environment()
        quiet_gx_logs()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        from ml.expectations import build_suite

        no_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        ctx = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                # no throw-away default docs site in /tmp: reports go only where report_dir says
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=no_bars,
            ),
        )
        ctx.variables.progress_bars = no_bars
        asset = ctx.data_sources.add_pandas("turkey").add_dataframe_asset("records")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole_file")
        self.context = ctx
        self.suites = {split: ctx.suites.add(build_suite(split)) for split in SPLITS}
        self.lock = threading.Lock()
        log.debug("GX context started")

    @property
    def store(self):
        """The context's validation results store (used only while Data Docs are rendered)."""
        return self.context.validation_results_store

    def run(self, split: str, frame, min_records: int):
        """Run the split's suite on the check frame. Nothing is stored (a stored COMPLETE result is
        serialised at once, which costs seconds at 120k records): see :func:`ml.validation.docs.build_docs`."""
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(
            self.suites[split],
            expectation_parameters={"min_records": int(min_records)},
            result_format={
                "result_format": "COMPLETE",
                "exclude_unexpected_values": True,
                "return_unexpected_index_query": False,
            },
        )


_ENGINE: Engine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> Engine:
    """The process's :class:`Engine`, started on first use."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Engine()
        return _ENGINE
