"""Registers :class:`turkey_airflow.notify.RunDeadline` with Airflow, so the scheduler can evaluate the
``turkey_training`` run deadline (custom deadline references must come from a plugin)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from turkey_airflow.notify import RunDeadline


class TurkeyNotifyPlugin(AirflowPlugin):
    """The run-deadline reference of ``turkey_training`` (see ``turkey_airflow.notify``)."""

    name = "turkey_notify"
    deadline_references = [RunDeadline]
