"""Database engines: URL handling, per-engine connection setup, and connection errors."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL

from eventvault.errors import StoreUnavailableError, UsageError

DEFAULT_URL = "sqlite:///eventvault.db"
WRITE = "eventvault_write"


def resolve_url(url: str | None) -> URL:
    """The vault URL: the argument, else EVENTVAULT_DB, else eventvault.db here."""
    text = url or os.environ.get("EVENTVAULT_DB") or DEFAULT_URL
    try:
        parsed = make_url(text)
    except sa_exc.ArgumentError:
        raise UsageError(
            f"malformed database URL {text!r}; expected e.g. sqlite:///vault.db or "
            "postgresql://user@host/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(
            f"unsupported database {parsed.get_backend_name()!r}; use sqlite:/// or postgresql://"
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other engines."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def create(url: URL) -> Engine:
    try:
        if url.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 60})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=False)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as error:
        raise UsageError(f"cannot use database URL {url.render_as_string()}: {error}") from None
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling would commit before DDL and defer BEGIN; take it
    # over so DDL is transactional and writers take the write lock up front (BEGIN
    # IMMEDIATE), which avoids deadlocks between two writers that both read first.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = "IMMEDIATE" if connection.get_execution_options().get(WRITE) else "DEFERRED"
        connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def connection_errors(url: URL) -> Iterator[None]:
    """Turn driver-level connection failures into one clear StoreUnavailableError."""
    try:
        yield
    except sa_exc.OperationalError as error:
        if not _is_connect_failure(error):
            raise
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise StoreUnavailableError(
            f"cannot open database {url.render_as_string(hide_password=True)}: {reason}"
        ) from None


def _is_connect_failure(error: sa_exc.OperationalError) -> bool:
    text = str(error.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection", "could not translate", "does not exist", "unable to open",
            "authentication", "timeout", "refused", "no such host", "password",
        )
    )
