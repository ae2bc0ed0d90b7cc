"""Extra links from a task in the Airflow UI to the console: "Model version" and "Validation report".

Airflow 3 computes an operator link on the worker when the task finishes and stores the URL in XCom
(key ``_link_<ClassName>``); the UI reads it back from there. So ``get_link`` receives the running task
instance as ``ti_key`` and may pull the task's own return value.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

log = logging.getLogger(__name__)

#: Where the plugin mounts the console app on the API server.
CONSOLE_PREFIX = "/turkey"


def api_base_url(default: str = "") -> str:
    """Airflow's ``[api] base_url`` without a trailing slash (``default`` when it is unset)."""
    from airflow.sdk.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or default).rstrip("/")


def console_url(path: str) -> str:
    """Absolute URL of a console page, from ``[api] base_url`` (relative if that is unset)."""
    return f"{api_base_url()}{CONSOLE_PREFIX}{path}"


def version_page(version: str) -> str:
    """The console URL of a model version's page."""
    return console_url(f"/models/{quote(version, safe='')}")


def validation_page(run_id: str) -> str:
    """The console URL of a run's validation report index."""
    return console_url(f"/runs/{quote(run_id, safe='')}/validation")


class ModelVersionLink(BaseOperatorLink):
    """On ``register`` and ``promote``: the console page of the version the task returned."""

    name = "Model version"

    def get_link(self, operator, *, ti_key) -> str:
        """The version page of the version in the task's return value ("" when it returned none)."""
        pull = getattr(ti_key, "xcom_pull", None)
        value = pull(task_ids=ti_key.task_id) if pull else None
        version = value.get("version") if isinstance(value, dict) else None
        return version_page(version) if version else ""


class ValidationReportLink(BaseOperatorLink):
    """On ``validate``: the run's validation reports (also when validation failed)."""

    name = "Validation report"

    def get_link(self, operator, *, ti_key) -> str:
        """The validation report index of the task's run."""
        return validation_page(ti_key.run_id)
