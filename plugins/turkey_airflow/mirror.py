"""The MLflow mirror from Airflow (docs/mlflow.md): where the tracking server is, and the calls that keep it
up to date -- the training DAG's ``mirror_to_mlflow`` task, the scoring task's catch-up, the console's.

The server is ``MLFLOW_TRACKING_URI`` when set, else the Airflow connection :data:`CONNECTION_ID`
(``AIRFLOW_CONN_TURKEY_MLFLOW=http://host:5000``, or one made in the UI: host, port, schema ``https`` for
TLS, login/password for basic auth, or ``{"tracking_uri": ...}`` in extra for any other URI). Nothing
here fails or holds up a run: :func:`ml.mlflow_mirror.catch_up` is bounded and never raises.
"""

from __future__ import annotations

import logging
import os
import threading

from turkey_airflow.tasks import task_body

log = logging.getLogger(__name__)

CONNECTION_ID = "turkey_mlflow"


def _connection():
    """The :data:`CONNECTION_ID` connection, or None (in a task through the Task SDK, elsewhere -- the
    API server's console -- through the secrets backends)."""
    try:
        from airflow.sdk import Connection

        return Connection.get(CONNECTION_ID)
    except Exception:  # noqa: BLE001 - not defined, or not inside a task: try the server side
        pass
    try:
        from airflow.models.connection import Connection as ServerConnection

        return ServerConnection.get_connection_from_secrets(CONNECTION_ID)
    except Exception:  # noqa: BLE001 - not defined anywhere: the mirror is off
        return None


def mlflow_environment() -> str | None:
    """The tracking URI, also put in ``MLFLOW_TRACKING_URI`` (and the connection's credentials in
    ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``) for the mirror's child process; None: the mirror is off."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        return uri
    conn = _connection()
    if conn is None:
        return None
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    uri = extra.get("tracking_uri")
    if not uri and conn.host:
        uri = conn.host if "://" in conn.host else f"{conn.schema or 'http'}://{conn.host}"
        uri += f":{conn.port}" if conn.port else ""
    if not uri:
        return None
    os.environ["MLFLOW_TRACKING_URI"] = uri
    if conn.login:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", conn.login)
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", conn.password or "")
    return uri


@task_body
def mirror_to_mlflow() -> dict:
    """Task body: bring MLflow up to date with the registry (this run's version, the champion alias, any
    lag). Skipped when no tracking server is configured; never fails the run (a lag is logged once)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ml import mlflow_mirror
    from ml.registry import Registry

    if not mlflow_environment():
        raise AirflowSkipException(f"no MLflow tracking server (MLFLOW_TRACKING_URI or connection {CONNECTION_ID})")
    out = mlflow_mirror.catch_up(Registry())
    log.info("MLflow mirror: %s", out)
    return out


def catch_up_in_background(registry) -> threading.Thread | None:
    """After the console moved the champion: catch up in a daemon thread (the page answers at once)."""
    if not mlflow_environment():
        return None
    from ml import mlflow_mirror

    thread = threading.Thread(target=mlflow_mirror.catch_up, args=(registry,), name="turkey-mlflow", daemon=True)
    thread.start()
    return thread
