"""Database errors in one clear line: a database that cannot be opened, is locked or goes
away, and driver messages without any password. Free of SQLAlchemy: the read commands' plain
SQLite path (reader.py) uses it too."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from eventvault.errors import NotAVaultError, StoreUnavailableError
from eventvault.storage.sqlite import BUSY_TIMEOUT, busy_timeout

DEFAULT_URL = "sqlite:///eventvault.db"
# user:password@ in a URL, with or without the scheme: what a message must never show.
_CREDENTIALS = re.compile(r"([^\s:/@]*:)[^\s@/]*@")


def without_password(text: str) -> str:
    """`text` with the password of any URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", text)


class _Opened:
    """Set once the connection is open: a failure after that is not a failure to open."""

    def __init__(self) -> None:
        self.done = False

    def set(self) -> None:
        self.done = True


@contextmanager
def connection_errors(where: str) -> Iterator[_Opened]:
    """Turn a database that cannot be opened, is locked, or goes away mid-way into one
    clear StoreUnavailableError; other database errors pass through unchanged."""
    opened = _Opened()
    try:
        yield opened
    except Exception as error:
        driver_error = getattr(error, "orig", None) or error
        if getattr(driver_error, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise NotAVaultError(f"{where} is not an EventVault vault (the file is not a "
                                 "SQLite database)") from None
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
    if isinstance(error, sqlite3.OperationalError):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")  # loaded before any of its errors is raised
    if sa_exc is not None and isinstance(error, (sa_exc.OperationalError,
                                                 sa_exc.InterfaceError)):
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


def url_text(url: str | None) -> str:
    """The vault URL as given: the argument, else EVENTVAULT_DB, else eventvault.db here."""
    return url or os.environ.get("EVENTVAULT_DB") or DEFAULT_URL
