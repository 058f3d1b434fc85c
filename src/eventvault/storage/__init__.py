"""The storage boundary: everything that differs between database engines, behind one interface.

The rest of EventVault writes portable SQLAlchemy, or asks `for_connection(connection)` (or
`for_url(url)`) for the engine's `Storage` and never branches on the dialect. One module per
engine implements it (sqlite.py, postgresql.py, mariadb.py); tests/storage_contract.py is the
contract every one of them passes, and docs/STORAGE.md the checklist for adding one.
"""

from __future__ import annotations

import contextlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from eventvault.errors import UsageError

if TYPE_CHECKING:  # SQLAlchemy is imported where an engine is made: the read commands'
    # plain SQLite path (reader.py) uses this module without it
    from sqlalchemy import Connection, Engine, Index, Table
    from sqlalchemy.engine.url import URL

READ_BATCH = 5000
# Execution option of a connection whose transaction will write (SQLite begins it IMMEDIATE).
WRITE = "eventvault_write"
# Raised by the append-only triggers of every engine: tests and users look for these words.
GUARD_MESSAGE = "events are append-only"
# backend name (as SQLAlchemy names it) -> module of this package implementing it
_MODULES = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb",
            "mariadb": "mariadb"}
_LOADED: dict[str, Storage] = {}


class Storage(ABC):
    """One database engine: how to connect to it, lock it, append to and read the log in
    bulk, guard the log, and grant a writer what it needs."""

    name: ClassVar[str]            # for messages: "SQLite", "PostgreSQL", "MariaDB"
    driver: ClassVar[str] = ""     # the driver package, when it is not the standard library's
    driver_extra: ClassVar[str] = ""  # the eventvault extra that installs it
    marker: ClassVar[str] = "%s"   # the driver's parameter marker (paramstyle)
    identifier_quote: ClassVar[str] = '"'  # what encloses a table or column name in SQL
    # One row if the table `?` exists where unqualified names resolve, none if not.
    table_exists_sql: ClassVar[str]
    returning: ClassVar[bool] = False  # INSERT ... RETURNING id, else the cursor's lastrowid
    # CREATE/DROP TABLE roll back with the rest; where not, a replay builds beside the vault
    # and swaps (build_beside, swap_in)
    transactional_ddl: ClassVar[bool] = True
    drops_foreign_key_indexes: ClassVar[bool] = True  # an FK column's index can be dropped

    # --- connecting ----------------------------------------------------------------------

    def normalise(self, url: URL) -> URL:
        """The URL with this engine's driver filled in when the user named none."""
        return url

    def create_engine(self, url: URL) -> Engine:
        from sqlalchemy import create_engine

        return create_engine(url, pool_pre_ping=False)

    def file_path(self, url: URL) -> Path | None:
        """The file the database lives in (None: a server, or memory)."""
        return None

    def prepare(self, connection: Connection) -> None:
        """Before the migrations run (every init and replay): database-wide settings."""
        return

    def consistent(self, connection: Connection) -> Connection:
        """The connection, set so every query of its transaction sees one snapshot."""
        return connection

    def session_user(self, connection: Connection) -> str | None:
        """The database account that logged in (SET ROLE aside), None without accounts."""
        return None

    # --- a replay's bulk mode (a new, empty database only) ---------------------------------

    def bulk_mode_applies(self, url: URL) -> bool:
        return False

    def enter_bulk_mode(self, connection: Connection) -> None:
        """Called on the fresh connection, before its transaction begins."""
        return

    def leave_bulk_mode(self, connection: Connection) -> None:
        """Called after the transaction ended, whatever its outcome."""
        return

    # --- locks ---------------------------------------------------------------------------

    def begin_write(self, connection: Connection) -> None:
        """At the start of every write transaction (Vault.connect(write=True))."""
        return

    def end_write(self, connection: Connection) -> None:
        """After a write transaction ended, committed or not; must not raise."""
        return

    @abstractmethod
    def lock_for_append(self, connection: Connection) -> None:
        """Serialise appends to the commit: seq order must be commit order, gapless."""

    def lock_for_replace(self, connection: Connection) -> None:
        """Hold off every other transaction on the vault until this one commits."""
        self.lock_for_append(connection)

    # --- the log -------------------------------------------------------------------------

    def insert_events(self, connection: Connection, columns: Sequence[str],
                      rows: list[tuple[Any, ...]], *, bulk: bool = False) -> None:
        """Rows of `events` (in `columns` order). `bulk`: a replay's load, the fastest way
        the engine has; its errors may bypass SQLAlchemy's wrapping."""
        sql = (f"INSERT INTO events ({', '.join(columns)}) "
               f"VALUES ({', '.join([self.marker] * len(columns))})")
        connection.exec_driver_sql(sql, rows)

    def quote(self, name: str) -> str:
        """A table or column name as SQL text, whatever words the engine reserves."""
        mark = self.identifier_quote
        return mark + name.replace(mark, mark * 2) + mark

    def _streaming_cursor(self, driver_connection: Any) -> Any:
        """A driver cursor that fetches rows as they are asked for."""
        return driver_connection.cursor()

    def sql(self, text: str) -> str:
        """`text`, whose parameter markers are `?` on every engine, in the driver's style.
        (The vault's plain SQL holds no other `?` and no `%`: names are the schema's,
        [a-z][a-z0-9_]*.)"""
        return text if self.marker == "?" else text.replace("?", self.marker)

    def stream_rows(self, driver_connection: Any, sql: str,
                    parameters: tuple[object, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a plain SQL query on the driver's (DB-API) connection, streamed in
        batches. `?` in `sql` is the parameter marker on every engine."""
        cursor = self._streaming_cursor(driver_connection)
        sql = self.sql(sql)
        try:
            cursor.execute(sql, parameters)
            while batch := cursor.fetchmany(READ_BATCH):
                yield from batch
        finally:
            # On a connection that went away closing fails too: the first error is the one
            # to tell.
            with contextlib.suppress(Exception):
                cursor.close()

    # --- the projection's bulk load ------------------------------------------------------

    def load_rows(self, cursor: Any, table: str, columns: Sequence[str],
                  rows: list[tuple[Any, ...]], batch: int) -> None:
        """Rows with their IDs into an empty table; then its next ID is past them."""
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join([self.marker] * len(columns))})")
        for at in range(0, len(rows), batch):
            cursor.executemany(sql, rows[at:at + batch])
        if rows:  # the last row's ID: rows may come in chunks (projection.load_rows)
            self.move_id_sequence(cursor, table, rows[-1][0])

    def droppable_indexes(self, indexes: list[Index]) -> list[Index]:
        """Of a table's indexes, those a bulk load may drop and build again after."""
        if self.drops_foreign_key_indexes:
            return indexes
        return [index for index in indexes
                if not any(column.foreign_keys for column in index.columns)]

    def move_id_sequence(self, cursor: Any, table: str, last_id: int) -> None:
        """After rows were inserted with explicit IDs up to `last_id`: new rows get more.
        (Nothing to do where the next ID is always max(id) + 1.)"""
        return

    def fit_columns(self, connection: Connection, tables: Sequence[Table]) -> None:
        """Give columns an earlier version created otherwise today's definition, before a
        rebuild rewrites their rows (nothing to do on most engines)."""
        return

    # --- a replay where DDL commits by itself (transactional_ddl False) -------------------

    @contextlib.contextmanager
    def build_beside(self, connection: Connection) -> Iterator[URL]:
        """A new, empty database beside the vault of `connection`, where a replay builds the
        vault that swap_in then puts in its place; dropped again, with whatever the build left,
        when the block ends. For engines whose DDL cannot roll back with a transaction."""
        raise NotImplementedError(f"{self.name} replays in one transaction")
        yield connection.engine.url  # a generator, for the signature's sake

    def swap_in(self, connection: Connection, built: URL, vault_tables: set[str]) -> None:
        """Replace the vault of `connection` (if any; its tables are `vault_tables`) by the
        one built at `built`, at once:
        a reader sees the old vault or the new one, never half, and the log is guarded
        throughout. Raises, leaving the old vault as it was, if the swap cannot be made."""
        raise NotImplementedError(f"{self.name} replays in one transaction")

    # --- guards and grants (the migrations and `init --writer-role`) ---------------------

    @abstractmethod
    def append_only_guard(self) -> list[str]:
        """DDL: triggers that make UPDATE and DELETE (and TRUNCATE where it can be caught)
        of events fail with GUARD_MESSAGE."""

    @abstractmethod
    def drop_append_only_guard(self) -> list[str]:
        """DDL undoing append_only_guard."""

    def check_writer_roles(self) -> None:
        """Refuse `init --writer-role` where grant_writer is not implemented."""
        raise UsageError(f"--writer-role is for PostgreSQL and MariaDB; {self.name} vaults "
                         "have no writer roles")

    def internal_tables(self) -> frozenset[str]:
        """Tables the guard creates that are no part of the schema (tables.py)."""
        return frozenset()

    def grant_writer(self, connection: Connection, role: str,
                     projection_tables: Sequence[str]) -> None:
        """Grant `role` what writing and reading need, and no ownership; on the vault's own
        tables and its projection's (`projection_tables`, named by the caller, who knows the
        vault's schema)."""
        self.check_writer_roles()


def writer_privileges(projection_tables: Sequence[str]) -> list[tuple[str, str]]:
    """(privileges, table) a writer needs on each of the vault's tables, on every engine.

    Exactly what the write commands, status, verify, snapshot and the audit need: read
    everything, append to the log, change projection rows and the head figures kept with
    every append (log_state.py: updated, never deleted; verify checks them against the log).
    Nothing that changes or removes an event, and no ownership, so no DDL either.
    """
    # Imported on use: the tables stand above the storage boundary.
    from eventvault.tables import events, log_state, vault_meta

    return [
        ("SELECT, INSERT", events.name),
        ("SELECT", "alembic_version"),
        ("SELECT", vault_meta.name),
        ("SELECT, INSERT, UPDATE", log_state.name),
        # The vault's own projection tables: a declared schema's, or the dms ones.
        *(("SELECT, INSERT, UPDATE, DELETE", table) for table in projection_tables),
    ]


def for_backend(backend: str) -> Storage:
    """The Storage of a SQLAlchemy backend name; UsageError for an engine we do not support."""
    module_name = _MODULES.get(backend)
    if module_name is None:
        raise UsageError(f"unsupported database {backend!r}; use sqlite:///, postgresql:// "
                         "or mysql+pymysql://")
    found = _LOADED.get(module_name)
    if found is None:
        module = importlib.import_module(f"{__name__}.{module_name}")
        found = _LOADED[module_name] = module.STORAGE
    return found


def for_url(url: URL) -> Storage:
    return for_backend(url.get_backend_name())


def for_connection(connection: Connection) -> Storage:
    return for_backend(connection.dialect.name)
