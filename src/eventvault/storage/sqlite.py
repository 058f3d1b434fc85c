"""SQLite: a file, one writer at a time (BEGIN IMMEDIATE), WAL mode, triggers as the guard."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from eventvault.errors import UsageError
from eventvault.storage import GUARD_MESSAGE, WRITE, Storage

if TYPE_CHECKING:  # imported where an engine is made (see storage/__init__.py)
    from sqlalchemy import Connection, Engine
    from sqlalchemy.engine.url import URL

BUSY_TIMEOUT = "EVENTVAULT_BUSY_TIMEOUT"  # seconds a SQLite vault waits for another's lock
DEFAULT_BUSY_TIMEOUT = 30.0


def busy_timeout() -> float:
    text = os.environ.get(BUSY_TIMEOUT, "")
    if not text:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**6:
        raise UsageError(f"{BUSY_TIMEOUT}={text!r} is not a number of seconds")
    return value


class SQLiteStorage(Storage):
    name = "SQLite"
    marker: ClassVar[str] = "?"
    table_exists_sql: ClassVar[str] = \
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

    def file_path(self, url: URL) -> Path | None:
        if url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    def create_engine(self, url: URL) -> Engine:
        from sqlalchemy import create_engine

        engine = create_engine(url, connect_args={"timeout": busy_timeout()})
        _configure(engine)
        return engine

    def connect_read_only(self, path: Path) -> sqlite3.Connection:
        """The file opened for reading only, never created (the read commands' path without
        SQLAlchemy, vault_read.py). Where this user may write the file and its directory it
        is opened read-write with every write refused (query_only): as the last connection
        to a WAL-mode file, its close then checkpoints and removes the -wal and -shm files,
        which a `mode=ro` connection leaves behind (owned by whoever read). Elsewhere (an
        auditor's read-only access) `mode=ro`. Of the engine's settings (_configure) only
        the busy timeout matters to a reader: foreign keys, the journal mode and synchronous
        govern writes, and a read of a WAL-mode file is a WAL read whatever this connection
        asks. No transaction begins by itself (isolation_level None): the reader begins one."""
        resolved = path.resolve()
        writable = os.access(resolved, os.W_OK) and os.access(resolved.parent, os.W_OK)
        connection = sqlite3.connect(f"{resolved.as_uri()}?mode={'rw' if writable else 'ro'}",
                                     uri=True, timeout=busy_timeout(), isolation_level=None)
        if writable:
            connection.execute("PRAGMA query_only = ON")
        return connection

    # A replay into a new file runs with a rollback journal instead of the WAL, which would
    # otherwise receive every page once more (measured: 1.5x faster), and a larger page
    # cache; atomicity is the same. Only a new file: another process may open a live vault
    # at any moment and would find it out of WAL mode with our write lock held.
    def bulk_mode_applies(self, url: URL) -> bool:
        path = self.file_path(url)
        return path is not None and not path.exists()

    def enter_bulk_mode(self, connection: Connection) -> None:
        # On the driver itself: a PRAGMA must not open a transaction.
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA busy_timeout = 0")
        try:  # only possible as the file's only connection; else stay in WAL mode
            raw.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.OperationalError:
            pass
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")
        raw.execute("PRAGMA cache_size = -65536")  # 64 MiB

    def leave_bulk_mode(self, connection: Connection) -> None:
        # If another connection is in the way, the next to open sets WAL mode again.
        with contextlib.suppress(sqlite3.Error):
            connection.connection.driver_connection.execute("PRAGMA journal_mode = WAL")

    def lock_for_append(self, connection: Connection) -> None:
        """Nothing to do: write transactions begin with BEGIN IMMEDIATE, which takes the
        database's write lock (and so holds off a replace too)."""

    def append_only_guard(self) -> list[str]:
        return [f"CREATE TRIGGER events_no_{action.lower()} BEFORE {action} ON events "
                f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END"
                for action in ("UPDATE", "DELETE")]

    def drop_append_only_guard(self) -> list[str]:
        return ["DROP TRIGGER IF EXISTS events_no_update",
                "DROP TRIGGER IF EXISTS events_no_delete"]

    def check_writer_roles(self) -> None:
        raise UsageError("--writer-role is for PostgreSQL and MariaDB; SQLite has no database "
                         "roles")


def _configure(engine: Engine) -> None:
    from sqlalchemy import event

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
        # On the driver itself: through SQLAlchemy's statement machinery this one word cost
        # a tenth of an empty write transaction's CPU. Its errors (a lock still held when the
        # busy timeout ends) are the driver's, which connection_errors() tells as well.
        connection.connection.driver_connection.execute(f"BEGIN {mode}")


STORAGE = SQLiteStorage()
