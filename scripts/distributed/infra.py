"""Claim and release the distributed deployment's own PostgreSQL database and Redis db index.

Only ever touches what it created: :func:`pg_create` makes a fresh database (refuses an existing name),
:func:`pg_drop` drops that one name (it must start with ``turkey_dist_``), :func:`redis_claim` picks an
*empty* Redis index and marks it, :func:`redis_flush` flushes that one index (only if it carries this
run's marker). Each raises :class:`InfraError` with a one-line reason.

Connection: TURKEY_DIST_PG_HOST/PORT/USER (127.0.0.1, 5432, postgres; trust auth or PGPASSWORD) and
TURKEY_DIST_REDIS_HOST/PORT (127.0.0.1, 6379).

One command line, run by the driver in the deployment's environment (Airflow's Celery settings)::

    python -m scripts.distributed.infra celery-check GPU_NODE DEFAULT_NODE
"""

from __future__ import annotations

import logging
import os
import socket
import sys

log = logging.getLogger(__name__)

PREFIX = "turkey_dist_"
MARKER = "turkey_dist:owner"


class InfraError(RuntimeError):
    """PostgreSQL or Redis is unreachable, or a database/index is not ours to create, claim or drop."""


def pg_address() -> tuple[str, int, str]:
    """(host, port, user) of the PostgreSQL server, from TURKEY_DIST_PG_HOST/PORT/USER."""
    return (
        os.environ.get("TURKEY_DIST_PG_HOST", "127.0.0.1"),
        int(os.environ.get("TURKEY_DIST_PG_PORT", "5432")),
        os.environ.get("TURKEY_DIST_PG_USER", "postgres"),
    )


def redis_address() -> tuple[str, int]:
    """(host, port) of the Redis server, from TURKEY_DIST_REDIS_HOST/PORT."""
    return os.environ.get("TURKEY_DIST_REDIS_HOST", "127.0.0.1"), int(os.environ.get("TURKEY_DIST_REDIS_PORT", "6379"))


def check_reachable() -> None:
    """Raise :class:`InfraError` unless both PostgreSQL and Redis accept TCP connections."""
    pg_host, pg_port, _ = pg_address()
    for (host, port), what in (((pg_host, pg_port), "PostgreSQL"), (redis_address(), "Redis")):
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            raise InfraError(
                f"{what} is not reachable at {host}:{port} ({exc}); make test-distributed needs both running"
            ) from exc


def _pg(dbname: str = "postgres"):
    """An autocommit connection to ``dbname`` on the configured server."""
    import psycopg2

    host, port, user = pg_address()
    conn = psycopg2.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    return conn


def _redis(db: int = 0):
    """A client of Redis db index ``db`` on the configured server."""
    import redis

    host, port = redis_address()
    return redis.Redis(host=host, port=port, db=db, socket_timeout=5)


def _check_name(name: str) -> None:
    """Refuse a database name that is not one of ours."""
    if not name.startswith(PREFIX) or not name.replace("_", "").isalnum():
        raise InfraError(f"refusing database name {name!r}: must start with {PREFIX!r} and be alphanumeric/underscore")


def pg_url(name: str, driver: str = "postgresql+psycopg2") -> str:
    """The SQLAlchemy URL of database ``name`` on the configured server."""
    host, port, user = pg_address()
    return f"{driver}://{user}@{host}:{port}/{name}"


def pg_create(name: str) -> None:
    """Create database ``name``; refuses a name that exists already."""
    _check_name(name)
    conn = _pg()  # no ``with conn``: psycopg2 would open a transaction, and CREATE DATABASE refuses one
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                raise InfraError(f"database {name} already exists; not reusing it")
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def pg_drop(name: str) -> None:
    """Drop database ``name`` (ours only: the ``turkey_dist_`` prefix), closing its connections."""
    _check_name(name)
    conn = _pg()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def redis_claim(first: int, token: str, exact: bool = False) -> int:
    """Mark the first empty Redis db index from ``first`` (only ``first`` when ``exact``) with ``token``."""
    n = int(_redis().config_get("databases").get("databases", 16))
    for idx in [first] if exact else range(first, n):
        r = _redis(idx)
        if r.dbsize() == 0 and r.set(MARKER, token, nx=True):
            return idx
    raise InfraError(f"no empty Redis db index in {[first] if exact else f'{first}..{n - 1}'} (set TURKEY_DIST_REDIS_DB)")


def redis_flush(idx: int, token: str) -> None:
    """Flush Redis db ``idx`` unless another run's ``token`` marks it."""
    r = _redis(idx)
    owner = r.get(MARKER)
    if owner is not None and owner.decode() != token:
        raise InfraError(f"Redis db {idx} is marked by another run ({owner.decode()}); not flushing it")
    r.flushdb()


def celery_check(gpu_node: str, default_node: str) -> bool:
    """Ask the running workers (Celery remote control) how they are configured and what they ran; print
    one line per worker and PASS/FAIL lines; True when the gpu worker takes only the gpu queue, one task
    at a time in a fresh process, and the default worker only the default queue."""
    from airflow.providers.celery.executors.celery_executor import app

    stats = app.control.inspect(destination=[gpu_node, default_node], timeout=10).stats() or {}
    queues = app.control.inspect(destination=[gpu_node, default_node], timeout=10).active_queues() or {}
    failed = []
    for node in (gpu_node, default_node):
        st = stats.get(node)
        if st is None:
            failed.append(f"{node}: no reply")
            continue
        pool = st.get("pool", {})
        ran = st.get("total", {})
        qs = sorted(q["name"] for q in queues.get(node, []))
        print(f"[celery] {node}: queues={qs} max-concurrency={pool.get('max-concurrency')} "
              f"max-tasks-per-child={pool.get('max-tasks-per-child')} tasks={ran}")
        if node == gpu_node:
            if qs != ["gpu"]:
                failed.append(f"{node} consumes {qs}, expected only gpu")
            if pool.get("max-concurrency") != 1 or pool.get("max-tasks-per-child") != 1:
                failed.append(f"{node}: expected concurrency 1 and max-tasks-per-child 1, got {pool}")
        elif qs != ["default"]:
            failed.append(f"{node} consumes {qs}, expected default")
    for f in failed:
        print(f"[celery] FAIL {f}")
    if not failed:
        print("[celery] PASS gpu worker: only the gpu queue, one task at a time, a fresh process per task")
    return not failed


def main(argv: list[str]) -> int:
    """``celery-check GPU_NODE DEFAULT_NODE``: exit 0 when :func:`celery_check` passes."""
    if len(argv) != 3 or argv[0] != "celery-check":
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if celery_check(argv[1], argv[2]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
