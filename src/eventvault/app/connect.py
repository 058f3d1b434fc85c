"""Transactions on an application's database: one consistent read, one atomic write.

SQLite through Python's sqlite3 module begins a transaction only before the first write, so
reads before it would each see their own moment; an explicit BEGIN makes the reads one
snapshot and a restore one transaction (BEGIN IMMEDIATE: no other writer from the start).
PostgreSQL reads under REPEATABLE READ (one snapshot for every statement).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from eventvault.errors import StoreUnavailableError


def app_engine(url: str) -> Engine:
    """An engine on the application's database; a URL that cannot be used is one line."""
    try:
        engine = create_engine(url)
        with engine.connect():
            pass
    except (SQLAlchemyError, ImportError, ValueError) as error:
        shown = make_url(url).render_as_string(hide_password=True) if "://" in url else url
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreUnavailableError(f"cannot open the application database {shown}: {first}"
                                    ) from None
    return engine


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection whose every read sees one snapshot; nothing is written, it rolls back."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("BEGIN")
            try:
                yield connection
            finally:
                connection.rollback()
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield connection
        finally:
            connection.rollback()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One transaction for everything: the caller commits; anything else rolls back."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Foreign keys checked (SQLite's default is not to), at commit: rows are written
            # before the rows on a cycle point at them.
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            # This connection's page cache (2 MiB by default) at 64 MiB, as a replay's: a
            # restore grows every table's indexes at once, and they no longer fit in 2 MiB.
            connection.exec_driver_sql("PRAGMA cache_size = -65536")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        try:
            yield connection
        finally:
            if connection.in_transaction():
                connection.rollback()
