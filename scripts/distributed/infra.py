"""Claim and release the distributed test's own PostgreSQL database and Redis db index.

Only ever touches what it created: ``pg-create`` makes a fresh database (refuses an existing name),
``pg-drop`` drops that one name (it must start with ``turkey_dist_``), ``redis-claim`` picks an *empty*
Redis index and marks it, ``redis-flush`` flushes that one index (only if it carries this run's marker).

    python infra.py pg-create NAME | pg-drop NAME | redis-claim FIRST_INDEX [--exact] TOKEN
    python infra.py redis-flush INDEX TOKEN | free-port

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
    elif cmd == "free-port":
        free_port()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
