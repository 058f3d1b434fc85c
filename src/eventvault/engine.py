"""Database engines through SQLAlchemy: URL handling, making an engine, who is writing.
(Connection errors in one line: db_errors.py.)"""

from __future__ import annotations

import getpass
import os
import pwd
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL

from eventvault import storage
from eventvault.db_errors import url_text, without_password
from eventvault.errors import UsageError
from eventvault.storage import WRITE as WRITE  # the execution option, for the callers


def resolve_url(url: str | None) -> URL:
    """The vault URL: the argument, else EVENTVAULT_DB, else eventvault.db here."""
    text = url_text(url)
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
