"""The Airflow plugins of turkey-pipeline, found through the ``airflow.plugins`` entry point of the
installed package (``pyproject.toml``), so no plugins folder is needed.

- :class:`TurkeyConsolePlugin`: the model console ("Models" in the Airflow navigation) mounted at
  ``/turkey`` on the API server behind Airflow's own login and DAG permissions
  (:mod:`turkey_airflow.console.console_app`), and the "Model version" / "Validation report" task links.
- :class:`TurkeyNotifyPlugin`: the run-deadline reference of ``turkey_training``
  (:class:`turkey_airflow.notify.RunDeadline`; custom deadline references must come from a plugin).
"""

from __future__ import annotations

import logging

from airflow.plugins_manager import AirflowPlugin

from turkey_airflow.console.console_links import CONSOLE_PREFIX, ModelVersionLink, ValidationReportLink
from turkey_airflow.notify import RunDeadline

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


class TurkeyNotifyPlugin(AirflowPlugin):
    """The run-deadline reference of ``turkey_training`` (see :mod:`turkey_airflow.notify`)."""

    name = "turkey_notify"
    deadline_references = [RunDeadline]
