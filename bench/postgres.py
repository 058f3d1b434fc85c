"""A throwaway PostgreSQL database for the replay figure: created empty, always dropped."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = os.environ.get("EVENTVAULT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def scratch_database(server: str = SERVER) -> Iterator[str]:
    """The SQLAlchemy URL of a new, uniquely named database on `server`; dropped afterwards."""
    name = f"eventvault_bench_{os.getpid()}_{time.time_ns()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(server: str = SERVER) -> str:
    with psycopg.connect(server) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def available(server: str = SERVER) -> bool:
    try:
        with psycopg.connect(server, connect_timeout=3):
            return True
    except psycopg.Error:
        return False
