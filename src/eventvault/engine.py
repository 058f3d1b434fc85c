"""Database engines: URL handling, per-engine connection setup, and connection errors."""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import re
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
BUSY_TIMEOUT = "EVENTVAULT_BUSY_TIMEOUT"  # seconds a SQLite vault waits for another's lock
DEFAULT_BUSY_TIMEOUT = 30.0
# user:password@ in a URL, with or without the scheme: what a message must never show.
_CREDENTIALS = re.compile(r"([^\s:/@]*:)[^\s@/]*@")


def without_password(text: str) -> str:
    """`text` with the password of any URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", text)


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


def resolve_url(url: str | None) -> URL:
    """The vault URL: the argument, else EVENTVAULT_DB, else eventvault.db here."""
    text = url or os.environ.get("EVENTVAULT_DB") or DEFAULT_URL
    try:
        parsed = make_url(text)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UsageError(
            f"malformed database URL {without_password(text)!r}; expected e.g. "
            "sqlite:///vault.db or "
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
            engine = create_engine(url, connect_args={"timeout": busy_timeout()})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=False)
    except ImportError as error:
        if url.get_backend_name() == "postgresql":
            raise UsageError(
                f"PostgreSQL needs the psycopg driver, which is not installed ({error}); "
                "install it with: pip install 'eventvault[postgres]'"
            ) from None
        raise UsageError(f"cannot use database URL {url.render_as_string(hide_password=True)}: "
                         f"{without_password(str(error))}") from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as error:
        raise UsageError(f"cannot use database URL {url.render_as_string(hide_password=True)}: "
                         f"{without_password(str(error))}") from None
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


def leave_wal(raw: sqlite3.Connection) -> None:
    """Switch to a rollback journal if this is the only connection to the file; if it is
    not (a live vault), stay in WAL mode rather than wait for the others or fail."""
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        raw.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.OperationalError:
        pass
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout() * 1000)}")


def enter_wal(raw: sqlite3.Connection) -> None:
    """Back to WAL mode; if another connection is in the way, the next to open sets it."""
    with contextlib.suppress(sqlite3.Error):
        raw.execute("PRAGMA journal_mode = WAL")


class _Opened:
    """Set once the connection is open: a failure after that is not a failure to open."""

    def __init__(self) -> None:
        self.done = False

    def set(self) -> None:
        self.done = True


@contextmanager
def connection_errors(url: URL) -> Iterator[_Opened]:
    """Turn a database that cannot be opened, is locked, or goes away mid-way into one
    clear StoreUnavailableError; other database errors pass through unchanged."""
    opened = _Opened()
    where = url.render_as_string(hide_password=True)
    try:
        yield opened
    except Exception as error:
        driver_error = getattr(error, "orig", None) or error
        if not _is_unavailable(error, driver_error):
            raise
        reason = describe(driver_error)
        if "database is locked" in reason:
            raise StoreUnavailableError(
                f"database {where} is locked by another connection (waited "
                f"{busy_timeout():g} s; {BUSY_TIMEOUT} sets how long); try again when it is "
                "done") from None
        if not opened.done and _is_connect_failure(driver_error):
            raise StoreUnavailableError(f"cannot open database {where}: {reason}") from None
        if opened.done and any(marker in reason.lower() for marker in _CONNECTION_LOST):
            raise StoreUnavailableError(
                f"lost the connection to database {where}: {reason}") from None
        raise


_CONNECTION_LOST = ("terminating connection", "server closed the connection",
                    "connection is closed", "connection is lost", "consuming input failed",
                    "connection lost", "broken pipe", "connection reset")


def describe(error: BaseException) -> str:
    """A driver error in one line, without any password."""
    lines = str(error).strip().splitlines()
    return without_password(lines[0] if lines else type(error).__name__)


def _is_unavailable(error: BaseException, driver_error: BaseException) -> bool:
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError,
                          sqlite3.OperationalError)):
        return True
    # psycopg's own errors reach us unwrapped from COPY and server-side cursors.
    module = type(driver_error).__module__
    return module.startswith("psycopg") and any(
        base.__name__ in ("OperationalError", "InterfaceError")
        for base in type(driver_error).__mro__)


def _is_connect_failure(error: BaseException) -> bool:
    text = str(error).lower()
    return any(
        marker in text
        for marker in (
            "connection", "could not translate", "does not exist", "unable to open",
            "authentication", "timeout", "refused", "no such host", "password",
        )
    )


def os_user() -> str:
    """The user running this process (its effective uid), as the system knows it."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no passwd entry (containers): the environment, else the uid
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return f"uid {os.geteuid()}"


def authenticated_principal(connection: Connection) -> dict[str, str]:
    """Who is really writing: the OS user, and on PostgreSQL the database session_user (the
    role that logged in, which SET ROLE does not change). SQLite has no users of its own."""
    principal = {"os": os_user()}
    if connection.dialect.name == "postgresql":
        principal["db"] = str(connection.exec_driver_sql("SELECT session_user").scalar_one())
    return principal
