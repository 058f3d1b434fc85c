"""MariaDB (and MySQL) through PyMySQL: a lock row for appends, SIGNAL triggers as the guard,
a foreign key that makes TRUNCATE fail, utf8mb4 with a binary collation everywhere, streamed
reads, writer accounts, and a replay built in a database beside the vault and swapped in by
one atomic RENAME TABLE."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, Table, create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.url import URL
from sqlalchemy.schema import CreateColumn

from eventvault.errors import StoreUnavailableError, UsageError, ValidationError
from eventvault.storage import GUARD_MESSAGE, Storage, writer_privileges

# The write lock's name: one per database (named locks are server-wide), within the
# 64-character limit whatever the database's name.
_WRITE_LOCK = "CONCAT('eventvault:', SHA1(DATABASE()))"
WRITE_LOCK_WAIT = 3600  # seconds a writer waits for another (a long replace included)
ALTER_WAIT = 10  # seconds an ALTER of rebuild waits for the readers of its table
_NO_SUCH_ACCOUNT = 1133  # "Can't find any matching row in the user table"
_LOCK_WAIT_TIMEOUT = 1205  # "Lock wait timeout exceeded" (a metadata lock too)
_TABLE_ACCESS_DENIED = 1142  # "ALTER command denied to user"
# A replay's log, staged in the vault's database before the swap, and the old log after it.
STAGED_EVENTS, RETIRED_EVENTS = "events__replay_new", "events__replay_old"
GUARDED = ("UPDATE", "DELETE")  # what the guard's triggers refuse
STREAM_PAUSE = 3600  # seconds a streamed read may wait for its reader (_streaming_cursor)
# An empty table whose foreign key points at events: InnoDB refuses TRUNCATE of a table
# another table references (TRUNCATE fires no DELETE trigger, so the triggers cannot).
TRUNCATE_GUARD = "events_truncate_guard"


class MariaDBStorage(Storage):
    name = "MariaDB"
    driver = "PyMySQL"
    driver_extra = "mariadb"
    # DDL commits the transaction implicitly (CREATE/DROP TABLE, CREATE INDEX): a replay
    # builds the new vault beside the old one and swaps it in (build_beside, swap_in).
    transactional_ddl: ClassVar[bool] = False
    # InnoDB keeps an index on every foreign key column and refuses to drop it.
    drops_foreign_key_indexes: ClassVar[bool] = False
    identifier_quote: ClassVar[str] = "`"
    table_exists_sql: ClassVar[str] = ("SELECT 1 FROM information_schema.tables "
                                       "WHERE table_schema = DATABASE() AND table_name = ?")

    def normalise(self, url: URL) -> URL:
        if url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername="mysql+pymysql")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url

    def create_engine(self, url: URL) -> Engine:
        # READ COMMITTED, as PostgreSQL's default: a writer reads the head of the log after
        # taking the append lock, and under InnoDB's default REPEATABLE READ that read would
        # come from the snapshot of the transaction's first read (before the lock), missing
        # the events another writer committed meanwhile.
        return create_engine(url, pool_pre_ping=False, isolation_level="READ COMMITTED")

    def consistent(self, connection: Connection) -> Connection:
        return connection.execution_options(isolation_level="REPEATABLE READ")

    def session_user(self, connection: Connection) -> str | None:
        # SESSION_USER() is user@client-host: the account's name is the part before the @.
        return str(connection.exec_driver_sql(
            "SELECT SUBSTRING_INDEX(SESSION_USER(), '@', 1)").scalar_one())

    def prepare(self, connection: Connection) -> None:
        # Every table the migrations create inherits the database's defaults: full UTF-8
        # (utf8mb4, not the 3-byte utf8) and a binary collation, so comparisons, unique keys
        # and sorting treat text exactly as SQLite and PostgreSQL do ('Ada' != 'ada').
        connection.exec_driver_sql(
            "ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def begin_write(self, connection: Connection) -> None:
        """One writer at a time, from the start of its transaction to its end (as SQLite's
        BEGIN IMMEDIATE): a named lock, which belongs to the session and so, unlike every
        row or table lock, survives the commits MariaDB makes by itself at each CREATE or DROP
        TABLE. A replace (which drops and recreates every table) holds it throughout, so a
        writer waits for the restored vault instead of writing into a half-built one."""
        got = connection.exec_driver_sql(
            f"SELECT GET_LOCK({_WRITE_LOCK}, {WRITE_LOCK_WAIT})").scalar()
        if got != 1:
            where = connection.engine.url.render_as_string(hide_password=True)
            raise StoreUnavailableError(
                f"database {where} is locked by another writer (waited {WRITE_LOCK_WAIT} s); "
                "try again when it is done")

    def end_write(self, connection: Connection) -> None:
        # On a connection that went away the lock went with its session.
        with contextlib.suppress(Exception):
            connection.exec_driver_sql(f"DO RELEASE_LOCK({_WRITE_LOCK})")

    def lock_for_append(self, connection: Connection) -> None:
        """The one row of log_state, locked FOR UPDATE to the commit.

        Writers through Vault already hold the write lock (begin_write); this row lock makes
        an append exclusive for any other caller too. Every append updates that row anyway
        (log_state.py), so locking it first costs nothing: a second writer waits here until the
        first commits, then reads the head it left (READ COMMITTED, see create_engine), so
        seq order is commit order, gapless. A row lock is released by COMMIT or ROLLBACK
        itself, unlike GET_LOCK, which belongs to the session and would outlive a
        transaction that failed before releasing it.
        """
        connection.exec_driver_sql("SELECT id FROM log_state WHERE id = 1 FOR UPDATE")

    def fit_columns(self, connection: Connection, tables: Sequence[Table]) -> None:
        """0.3.0 gave a declared float field a FLOAT column, single precision (1/3 read back
        0.333333): such a column is redefined as `tables` define it now (DOUBLE, with its
        nullability and default). Widening loses nothing; each ALTER commits by itself (a
        writer waits on the write lock, begin_write) and waits for every open transaction
        that read its table, ALTER_WAIT seconds at most, while new readers queue behind it."""
        by_name = {table.name: table for table in tables}
        if not by_name:
            return
        floats = connection.exec_driver_sql(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND data_type = 'float' "
            f"AND table_name IN ({', '.join(['%s'] * len(by_name))})", tuple(by_name)).all()
        if not floats:
            return
        connection.exec_driver_sql(f"SET SESSION lock_wait_timeout = {ALTER_WAIT}")
        try:
            for table, column in floats:
                definition = CreateColumn(by_name[table].c[column]).compile(
                    dialect=connection.dialect)
                try:
                    connection.exec_driver_sql(f"ALTER TABLE {_quote(table)} MODIFY {definition}")
                except sa_exc.DBAPIError as error:
                    raise _alter_refused(error, table) from None
        finally:
            connection.exec_driver_sql("SET SESSION lock_wait_timeout = DEFAULT")

    def _streaming_cursor(self, driver_connection: Any) -> Any:
        """PyMySQL's default cursor reads a whole result into memory when it executes (a
        snapshot of a large vault held its whole log); SSCursor reads rows off the socket as
        fetchmany asks. Until its rows are read or it is closed (which reads the rest) the
        connection runs no other query: PyMySQL would read the rest away with only a warning,
        so every caller reads a stream to its end before its next query. The server gives up
        on a client that reads nothing for net_write_timeout (60 s by default): a reader may
        pause longer (a slow package target), so the stream's session allows an hour."""
        from pymysql.cursors import SSCursor  # the driver, imported where it is needed

        with driver_connection.cursor() as cursor:
            cursor.execute(f"SET SESSION net_write_timeout = {STREAM_PAUSE}")
        return driver_connection.cursor(SSCursor)

    def append_only_guard(self) -> list[str]:
        return [
            *_guard_triggers("events"),
            f"CREATE TABLE {TRUNCATE_GUARD} (seq BIGINT NOT NULL, "
            f"CONSTRAINT fk_{TRUNCATE_GUARD} FOREIGN KEY (seq) REFERENCES events (seq))",
        ]

    def drop_append_only_guard(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {TRUNCATE_GUARD}",
                *(f"DROP TRIGGER IF EXISTS {_trigger_name(action)}" for action in GUARDED)]

    # --- a replay: built beside the vault, swapped in whole ---------------------------------

    @contextlib.contextmanager
    def build_beside(self, connection: Connection) -> Iterator[URL]:
        """A database named after the vault's (`<db>__replay_new`; the account that replays
        needs CREATE and DROP on `<db>__replay_%`). Its name is fixed: the replay holds the
        vault's write lock (begin_write), so no other one builds beside this vault, and
        what a killed replay left is dropped here first."""
        names = _Beside(connection)
        names.clear(connection)
        connection.exec_driver_sql(f"CREATE DATABASE {_quote(names.new)}")
        try:
            yield connection.engine.url.set(database=names.new)
        finally:
            # On a connection that went away this fails too: the first error is the one to
            # tell, and the next replay drops what is left.
            with contextlib.suppress(Exception):
                names.clear(connection)

    def swap_in(self, connection: Connection, built: URL, vault_tables: set[str]) -> None:
        """The built vault's tables replace the old vault's by one RENAME TABLE, which
        MariaDB makes atomic for all the tables it names: a reader's transaction ends on
        the old tables before it, the next one begins on the new (it waits for open
        transactions on the old ones, and new readers wait for it, a moment).

        MariaDB moves no table with triggers to another database, so the built log comes in
        first under a name of its own (STAGED_EVENTS) and gets its guard's triggers there;
        the old log is then renamed within the database (its triggers follow it), and every
        other table moves between databases: the old vault's out to `<db>__replay_old`
        first, the new one's in after, so their foreign key names (unique per database)
        never meet. The log is guarded at every moment. After the swap the old tables are
        dropped and the new log's triggers get their usual names (its staged ones go once
        those exist); a failure there leaves a complete, guarded vault and leftovers that
        the next replay drops.
        """
        names = _Beside(connection)
        present = _tables(connection, names.target)
        # The old vault's tables and its guard's; another application's tables stay.
        retired = vault_tables | ({TRUNCATE_GUARD} & present) if vault_tables else set()
        arriving = _tables(connection, names.new)
        foreign = (present - retired) & arriving
        if foreign:
            raise ValidationError(
                f"database {names.target} holds tables that are not the vault's but that "
                f"the replayed vault needs ({', '.join(sorted(foreign))}); move them away")
        target, new, old = _quote(names.target), _quote(names.new), _quote(names.old)
        staged = f"{target}.{_quote(STAGED_EVENTS)}"
        suffix = f"__{secrets.token_hex(4)}"
        for (trigger,) in connection.exec_driver_sql(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                "WHERE EVENT_OBJECT_SCHEMA = %s", (names.new,)).all():
            connection.exec_driver_sql(f"DROP TRIGGER {new}.{_quote(trigger)}")
        connection.exec_driver_sql(f"RENAME TABLE {new}.events TO {staged}")
        for statement in _guard_triggers(staged, target, suffix):
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(f"CREATE DATABASE {old}")
        renames = [f"{target}.{_quote(name)} TO {old}.{_quote(name)}"
                   for name in sorted(retired - {"events"})]
        if "events" in retired:
            renames.insert(0, f"{target}.events TO {target}.{_quote(RETIRED_EVENTS)}")
        renames.append(f"{staged} TO {target}.events")
        renames += [f"{new}.{_quote(name)} TO {target}.{_quote(name)}"
                    for name in sorted(arriving - {"events"})]
        connection.exec_driver_sql(f"RENAME TABLE {', '.join(renames)}")
        with contextlib.suppress(Exception):  # the vault is complete and guarded already
            names.clear(connection)
            for statement in _guard_triggers("events", target):
                connection.exec_driver_sql(statement)
            for action in GUARDED:
                connection.exec_driver_sql(
                    f"DROP TRIGGER {target}.{_quote(_trigger_name(action, suffix))}")

    def internal_tables(self) -> frozenset[str]:
        return frozenset({TRUNCATE_GUARD})

    def check_writer_roles(self) -> None:
        return

    def grant_writer(self, connection: Connection, role: str,
                     projection_tables: Sequence[str]) -> None:
        """Table privileges for a writer account (`name` or `name@host`), granted by the
        account that runs init (which needs GRANT OPTION on the database).

        The grants are writer_privileges, table by table: the writer has no UPDATE, DELETE
        or DROP (so no TRUNCATE) on events, no ALTER, no TRIGGER (so it can neither drop
        the guard's triggers nor create its own), and the triggers refuse UPDATE and DELETE
        of events to everyone anyway. GET_LOCK (begin_write) needs no privilege; the append
        lock (SELECT ... FOR UPDATE of log_state) needs the UPDATE it has there. MariaDB
        keeps table privileges by name, so they hold for the tables a `replay --replace`
        swaps in under the same names (swap_in).

        `name` alone is MariaDB's own reading of an account without a host: a role of that
        name if there is one, else 'name'@'%'.
        """
        quote = connection.dialect.identifier_preparer.quote
        user, _, host = role.partition("@")
        who = quote(user) + (f"@{quote(host)}" if host else "")
        owner = connection.exec_driver_sql(
            "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)").scalar_one()
        if user == owner:
            raise UsageError(f"{role!r} runs init and owns the vault; name another account "
                             "as writer")
        database = quote(connection.exec_driver_sql("SELECT DATABASE()").scalar_one())
        for privileges, table in writer_privileges(projection_tables):
            try:
                connection.exec_driver_sql(
                    f"GRANT {privileges} ON {database}.{quote(table)} TO {who}")
            except sa_exc.DBAPIError as error:
                if getattr(error.orig, "args", (None,))[0] != _NO_SUCH_ACCOUNT:
                    raise
                raise UsageError(
                    f"no MariaDB account {role!r}; create it first (CREATE USER "
                    f"'{user}'@'{host or '%'}' IDENTIFIED BY ...)") from None


def _alter_refused(error: sa_exc.DBAPIError, table: str) -> Exception:
    """The two ways widening a 0.3.0 column fails, as what to do about them."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    if code == _LOCK_WAIT_TIMEOUT:
        return StoreUnavailableError(
            f"table {table} is being read (a snapshot, verify or export?): rebuild widens its "
            f"FLOAT column, which waits for them; waited {ALTER_WAIT} s, try again when they "
            "are done")
    if code == _TABLE_ACCESS_DENIED:
        return ValidationError(
            f"rebuild widens table {table}'s FLOAT column (made by 0.3.0), which needs ALTER: "
            "run it as the vault's owner")
    return error


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _trigger_name(action: str, suffix: str = "") -> str:
    return f"events_no_{action.lower()}{suffix}"


def _guard_triggers(table: str, database: str = "", suffix: str = "") -> list[str]:
    """The guard's triggers on `table` (quoted, qualified or not); `database` (quoted)
    qualifies their names, `suffix` makes them differ from the usual ones."""
    where = f"{database}." if database else ""
    return [f"CREATE TRIGGER {where}{_trigger_name(action, suffix)} BEFORE {action} ON {table} "
            f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{GUARD_MESSAGE}'"
            for action in GUARDED]


class _Beside:
    """The names of a replay's databases beside the vault's (64 characters at most)."""

    def __init__(self, connection: Connection) -> None:
        self.target = str(connection.exec_driver_sql("SELECT DATABASE()").scalar_one())
        self.new, self.old = (self._named(role) for role in ("replay_new", "replay_old"))

    def _named(self, role: str) -> str:
        name = f"{self.target}__{role}"
        if len(name) <= 64:
            return name
        digest = hashlib.sha1(self.target.encode()).hexdigest()[:8]
        return f"{self.target[:64 - len(role) - 11]}_{digest}__{role}"

    def clear(self, connection: Connection) -> None:
        """Drop what a replay builds or leaves beside the vault. The databases first: their
        truncate guards refer to the staged and retired logs."""
        target = _quote(self.target)
        for statement in (f"DROP DATABASE IF EXISTS {_quote(self.old)}",
                          f"DROP DATABASE IF EXISTS {_quote(self.new)}",
                          f"DROP TABLE IF EXISTS {target}.{_quote(RETIRED_EVENTS)}",
                          f"DROP TABLE IF EXISTS {target}.{_quote(STAGED_EVENTS)}"):
            connection.exec_driver_sql(statement)


def _tables(connection: Connection, database: str) -> set[str]:
    return {name for (name,) in connection.exec_driver_sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
        (database,)).all()}


STORAGE = MariaDBStorage()
