"""Data Docs: render a validation result and its suite into a static GX site under the report folder."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from ml.validation.engine import Engine
from ml.validation.outcome import Failure

log = logging.getLogger(__name__)

SITE_NAME = "turkey_report"


def trim_for_docs(result, limit: int = 20):
    """Shorten per-record lists in the GX result so the HTML stays small at any file size."""
    for r in result.results:
        res = r.result or {}
        for k in ("unexpected_index_list", "unexpected_list", "partial_unexpected_index_list"):
            if isinstance(res.get(k), list) and len(res[k]) > limit:
                res[k] = res[k][:limit]
    return result


def build_docs(engine: Engine, site_dir: Path, result, split: str, batch_identifier: str) -> str:
    """Render ``result`` plus the suite into a static Data Docs site in ``site_dir``; return the path
    of this result's page (index.html if it cannot be located).

    The result is stored only while its page is rendered (trim it first: storing serialises it).
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = engine.context
    site_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if SITE_NAME in context.list_data_docs_sites():
        context.update_data_docs_site(SITE_NAME, config)
    else:
        context.add_data_docs_site(SITE_NAME, config)
    run_id = RunIdentifier(run_name=f"validate_{split}", run_time=datetime.now(UTC))
    result.meta["run_id"] = run_id
    result.meta["validation_time"] = run_id.run_time
    suite_id = ExpectationSuiteIdentifier(name=f"turkey_{split}")
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=batch_identifier
    )
    engine.store.set(key, result)
    try:
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[key, suite_id])
        # The run's own result page: it renders its content even offline, whereas the index page's
        # table is filled by JavaScript loaded from CDNs.
        urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME, only_if_exists=True)
    finally:
        engine.store.remove_key(key)
    url = (urls[0].get("site_url") if urls else None) or ""
    page = Path(url[len("file://") :]) if url.startswith("file://") else None
    return str(page) if page is not None and page.is_file() else str(site_dir / "index.html")


def structural_result(split: str, failure: Failure, path: str):
    """A hand-made validation result for a file that could not be parsed (so Data Docs can show it)."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    config = ExpectationConfiguration(
        type="expect_table_row_count_to_be_between",
        kwargs={"min_value": 1},
        meta={"rule": failure.rule},
        description=f"The file can be parsed as a JSON list of records (rule {failure.rule})",
    )
    evr = ExpectationValidationResult(
        success=False,
        expectation_config=config,
        result={},
        exception_info={
            "raised_exception": True,
            "exception_message": f"rule '{failure.rule}' broken: {failure.message}",
            "exception_traceback": f"{path}: the file could not be parsed, so no record rule was checked",
        },
    )
    return ExpectationSuiteValidationResult(
        success=False,
        results=[evr],
        suite_name=f"turkey_{split}",
        statistics={
            "evaluated_expectations": 1,
            "successful_expectations": 0,
            "unsuccessful_expectations": 1,
            "success_percent": 0.0,
        },
        meta={"file": path},
    )
