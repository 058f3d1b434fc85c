"""Database engines: URL handling, per-engine connection setup, and connection errors."""

from __future__ import annotations

import getpass
import os
import pwd
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL

from eventvault import storage
from eventvault.errors import StoreUnavailableError, UsageError
from eventvault.storage import WRITE as WRITE  # the execution option, for the callers
from eventvault.storage.sqlite import BUSY_TIMEOUT, busy_timeout

DEFAULT_URL = "sqlite:///eventvault.db"
# user:password@ in a URL, with or without the scheme: what a message must never show.
_CREDENTIALS = re.compile(r"([^\s:/@]*:)[^\s@/]*@")


def without_password(text: str) -> str:
    """`text` with the password of any URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", text)


def resolve_url(url: str | None) -> URL:
    """The vault URL: the argument, else EVENTVAULT_DB, else eventvault.db here."""
    text = url or os.environ.get("EVENTVAULT_DB") or DEFAULT_URL
    try:
        parsed = make_url(text)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise UsageError(
            f"malformed database URL {without_password(text)!r}; expected e.g. "
            "sqlite:///vault.db, "
            "postgresql://user@host/dbname or mysql+pymysql://user@host/dbname"
        ) from None
    return storage.for_url(parsed).normalise(parsed)


def file_path(url: URL) -> Path | None:
    """The file behind a URL (SQLite), or None for memory databases and servers."""
    return storage.for_url(url).file_path(url)


def create(url: URL) -> Engine:
    try:
        engine_storage = storage.for_url(url)
        engine = engine_storage.create_engine(url)
    except ImportError as error:
        if engine_storage.driver_extra:
            raise UsageError(
                f"{engine_storage.name} needs the {engine_storage.driver} driver, which is not "
                f"installed ({error}); install it with: "
                f"pip install 'eventvault[{engine_storage.driver_extra}]'"
            ) from None
        raise UsageError(f"cannot use database URL {url.render_as_string(hide_password=True)}: "
                         f"{without_password(str(error))}") from None
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError) as error:
        raise UsageError(f"cannot use database URL {url.render_as_string(hide_password=True)}: "
                         f"{without_password(str(error))}") from None
    return engine


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
                    "connection lost", "broken pipe", "connection reset",
                    "lost connection", "server has gone away")


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
            "can't connect", "unknown database", "access denied",
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
    """Who is really writing: the OS user, and where the engine has accounts the database
    session user (the role that logged in, which SET ROLE does not change)."""
    principal = {"os": os_user()}
    user = storage.for_connection(connection).session_user(connection)
    if user is not None:
        principal["db"] = user
    return principal
