"""PostgreSQL (psycopg 3): an advisory lock for appends, COPY for bulk loads, named cursors
for streaming, triggers as the guard (TRUNCATE included), least-privilege writer roles."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine.url import URL

from eventvault.errors import UsageError
from eventvault.storage import GUARD_MESSAGE, Storage, writer_privileges

# The advisory lock key that serialises appends ("EVAPPEND" in ASCII).
APPEND_LOCK_KEY = 0x4556415050454E44
_STREAMS = itertools.count(1)


class PostgreSQLStorage(Storage):
    name = "PostgreSQL"
    driver = "psycopg"
    driver_extra = "postgres"
    returning: ClassVar[bool] = True
    # A table (plain or partitioned) visible on the search path; SQLAlchemy's has_table
    # also counts views and foreign tables, which a vault never uses for its own.
    table_exists_sql: ClassVar[str] = (
        "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = ? AND c.relkind IN ('r', 'p') "
        "AND pg_catalog.pg_table_is_visible(c.oid)")

    def normalise(self, url: URL) -> URL:
        if url.drivername in ("postgresql", "postgres"):
            return url.set(drivername="postgresql+psycopg")
        return url

    def consistent(self, connection: Connection) -> Connection:
        return connection.execution_options(isolation_level="REPEATABLE READ")

    def session_user(self, connection: Connection) -> str | None:
        return str(connection.exec_driver_sql("SELECT session_user").scalar_one())

    def lock_for_append(self, connection: Connection) -> None:
        """A transaction-level advisory lock every appender takes, held to the commit.

        Without it two transactions could take seq n and n+1 and commit in the opposite
        order: a reader polling "events after n" would see n+1 first and skip n for good.
        `LOCK TABLE events IN EXCLUSIVE MODE` would do the same, but PostgreSQL grants it
        only to a role that may UPDATE, DELETE or TRUNCATE events, which a least-privilege
        writer role (`init --writer-role`) must not.
        """
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})")

    def lock_for_replace(self, connection: Connection) -> None:
        """Every table in ACCESS EXCLUSIVE mode, in one statement, alembic_version first.

        A writer reads alembic_version before it takes the append lock, so locking `events`
        first would deadlock with a writer holding alembic_version and waiting for `events`
        (the replace drops and recreates every table); a writer not yet started waits at its
        first table, and finds the restored vault when the replace commits.
        """
        names = sorted(inspect(connection).get_table_names(),
                       key=lambda name: (name != "alembic_version", name))
        quote = connection.dialect.identifier_preparer.quote
        connection.exec_driver_sql(
            f"LOCK TABLE {', '.join(quote(name) for name in names)} IN ACCESS EXCLUSIVE MODE")

    def insert_events(self, connection: Connection, columns: Sequence[str],
                      rows: list[tuple[Any, ...]], *, bulk: bool = False) -> None:
        """`bulk` uses COPY, measured ~3x faster, but its errors bypass SQLAlchemy, so the
        command path, which must turn a duplicate version into a ConcurrencyError, does not."""
        if not bulk:
            super().insert_events(connection, columns, rows)
            return
        with connection.connection.driver_connection.cursor() as cursor, \
                cursor.copy(f"COPY events ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _streaming_cursor(self, driver_connection: Any) -> Any:
        # A named (server-side) cursor, or the driver would fetch the whole result at once.
        return driver_connection.cursor(name=f"eventvault_stream_{next(_STREAMS)}")

    def move_id_sequence(self, cursor: Any, table: str, last_id: int) -> None:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
                       (last_id,))

    def append_only_guard(self) -> list[str]:
        return [
            "CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{GUARD_MESSAGE}'; END $$",
            "CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION events_append_only()",
            "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()",
        ]

    def drop_append_only_guard(self) -> list[str]:
        return ["DROP TRIGGER IF EXISTS events_no_truncate ON events",
                "DROP TRIGGER IF EXISTS events_no_change ON events",
                "DROP FUNCTION IF EXISTS events_append_only()"]

    def check_writer_roles(self) -> None:
        return

    def grant_writer(self, connection: Connection, role: str,
                     projection_tables: Sequence[str]) -> None:
        """What a writer role may do to a vault, granted by its owner.

        The role that runs `init` owns the tables and migrates them; a writer role gets
        exactly what the write commands, status, verify, snapshot and the audit need: it
        reads everything, appends to the log, changes projection rows and the maintained
        head figures (log_state), draws IDs from the projection's sequences. It owns nothing,
        so it cannot drop or alter a table or a trigger, and the triggers refuse it UPDATE,
        DELETE and TRUNCATE of events like anyone else. (Appends serialise through an
        advisory lock, lock_for_append, because LOCK TABLE in EXCLUSIVE mode would need
        UPDATE on events.)
        """
        if not connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                  {"r": role}).first():
            raise UsageError(f"no database role {role!r}; create it first (CREATE ROLE ... "
                             "LOGIN)")
        if role == connection.execute(text("SELECT current_user")).scalar_one():
            raise UsageError(f"{role!r} runs init and owns the vault; name another role as "
                             "writer")
        quote = connection.dialect.identifier_preparer.quote
        who = quote(role)
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        schema_name = connection.execute(text("SELECT current_schema()")).scalar_one()
        statements = [
            f"GRANT CONNECT ON DATABASE {quote(database)} TO {who}",
            f"GRANT USAGE ON SCHEMA {quote(schema_name)} TO {who}",
        ]
        for privileges, table in writer_privileges(projection_tables):
            statements.append(f"GRANT {privileges} ON {quote(table)} TO {who}")
            if "DELETE" not in privileges:  # the projection's tables draw IDs
                continue
            sequence = connection.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                          {"t": table}).scalar_one()
            if sequence is not None:  # already quoted and schema-qualified by PostgreSQL
                statements.append(f"GRANT USAGE ON SEQUENCE {sequence} TO {who}")
        for statement in statements:
            connection.exec_driver_sql(statement)


STORAGE = PostgreSQLStorage()
