"""Claim and release the distributed test's own PostgreSQL database and Redis db index.

Only ever touches what it created: ``pg-create`` makes a fresh database (refuses an existing name),
``pg-drop`` drops that one name (it must start with ``turkey_dist_``), ``redis-claim`` picks an *empty*
Redis index and marks it, ``redis-flush`` flushes that one index (only if it carries this run's marker).

    python infra.py pg-create NAME | pg-drop NAME | redis-claim FIRST_INDEX [--exact] TOKEN
    python infra.py redis-flush INDEX TOKEN | free-port
    python infra.py celery-check GPU_NODE DEFAULT_NODE   (Airflow's Celery settings from the environment)

Connection: TURKEY_DIST_PG_HOST/PORT/USER (127.0.0.1, 5432, postgres; trust auth or PGPASSWORD) and
TURKEY_DIST_REDIS_HOST/PORT (127.0.0.1, 6379).
"""

from __future__ import annotations

import os
import socket
import sys

PREFIX = "turkey_dist_"
MARKER = "turkey_dist:owner"


def _pg(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(
        host=os.environ.get("TURKEY_DIST_PG_HOST", "127.0.0.1"),
        port=int(os.environ.get("TURKEY_DIST_PG_PORT", "5432")),
        user=os.environ.get("TURKEY_DIST_PG_USER", "postgres"),
        dbname=dbname,
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def _redis(db: int = 0):
    import redis

    return redis.Redis(
        host=os.environ.get("TURKEY_DIST_REDIS_HOST", "127.0.0.1"),
        port=int(os.environ.get("TURKEY_DIST_REDIS_PORT", "6379")),
        db=db,
        socket_timeout=5,
    )


def _check_name(name: str) -> None:
    if not name.startswith(PREFIX) or not name.replace("_", "").isalnum():
        sys.exit(f"refusing database name {name!r}: must start with {PREFIX!r} and be alphanumeric/underscore")


def pg_create(name: str) -> None:
    _check_name(name)
    conn = _pg()  # no ``with conn``: psycopg2 would open a transaction, and CREATE DATABASE refuses one
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                sys.exit(f"database {name} already exists; not reusing it")
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def pg_drop(name: str) -> None:
    _check_name(name)
    conn = _pg()
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def redis_claim(first: int, token: str, exact: bool) -> None:
    n = int(_redis().config_get("databases").get("databases", 16))
    for idx in [first] if exact else range(first, n):
        r = _redis(idx)
        if r.dbsize() == 0 and r.set(MARKER, token, nx=True):
            print(idx)
            return
    sys.exit(f"no empty Redis db index in {[first] if exact else f'{first}..{n - 1}'} (set TURKEY_DIST_REDIS_DB)")


def redis_flush(idx: int, token: str) -> None:
    r = _redis(idx)
    owner = r.get(MARKER)
    if owner is not None and owner.decode() != token:
        sys.exit(f"Redis db {idx} is marked by another run ({owner.decode()}); not flushing it")
    r.flushdb()


def free_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def celery_check(gpu_node: str, default_node: str) -> None:
    """Ask the running workers (Celery remote control) how they are configured and what they ran."""
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
    if failed:
        sys.exit(1)
    print("[celery] PASS gpu worker: only the gpu queue, one task at a time, a fresh process per task")


def main(argv: list[str]) -> None:
    cmd, *rest = argv or ["-h"]
    if cmd == "pg-create":
        pg_create(rest[0])
    elif cmd == "pg-drop":
        pg_drop(rest[0])
    elif cmd == "redis-claim":
        exact = "--exact" in rest
        rest = [a for a in rest if a != "--exact"]
        redis_claim(int(rest[0]), rest[1], exact)
    elif cmd == "redis-flush":
        redis_flush(int(rest[0]), rest[1])
    elif cmd == "celery-check":
        celery_check(rest[0], rest[1])
    elif cmd == "free-port":
        free_port()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
