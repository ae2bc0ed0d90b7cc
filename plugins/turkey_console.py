"""Airflow plugin: the turkey model console ("Models" in the Airflow navigation) and task extra links.

- ``fastapi_apps``: the console pages (``turkey_airflow.console.console_app``) mounted at ``/turkey`` on the
  API server, behind Airflow's own login and DAG permissions.
- ``external_views``: a "Models" navigation entry that shows the console inside the Airflow UI.
- ``operator_extra_links``: "Model version" (register, promote) and "Validation report" (validate); the
  DAG attaches them to its tasks, listing them here registers them with Airflow.
"""

from __future__ import annotations

import logging

from airflow.plugins_manager import AirflowPlugin

from turkey_airflow.console.console_links import CONSOLE_PREFIX, ModelVersionLink, ValidationReportLink

log = logging.getLogger(__name__)


def _console_app():
    """The console's FastAPI app, built when Airflow loads this plugin."""
    from turkey_airflow.console.console_app import create_app

    return create_app()


class TurkeyConsolePlugin(AirflowPlugin):
    """Model registry pages inside the Airflow UI."""

    name = "turkey_console"
    fastapi_apps = [{"app": _console_app(), "url_prefix": CONSOLE_PREFIX, "name": "turkey model console"}]
    external_views = [
        {
            "name": "Models",
            "href": f"{CONSOLE_PREFIX}/models",
            "url_route": "turkey-models",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
    operator_extra_links = [ModelVersionLink(), ValidationReportLink()]
