"""Reading a vault through a plain DB-API connection, in one read transaction.

The read-only queries of `status` and the audit are written once, as SQL text with `?`
markers, against a `Reader`; `Reader.sql` is the one place that adapts them to the driver's
parameter style. Where the connection comes from is decided here, once:
- a SQLite file named by a plain `sqlite:///PATH` URL: the standard library's sqlite3, the
  file opened read-only. The read commands then start without SQLAlchemy, whose import alone
  takes three times an `eventvault --version` (bench/README.md, issue 14);
- any other URL (PostgreSQL, MariaDB, SQLite URLs with options): the SQLAlchemy engine's own
  driver connection, inside the transaction `Vault.connect` began (`as_reader`), so the
  engine's settings apply as for every other command.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventvault import schema
from eventvault.db_errors import connection_errors, url_text
from eventvault.errors import NotAVaultError
from eventvault.storage import Storage

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from eventvault.vault import Vault

Row = tuple[Any, ...]

# A plain SQLite file URL: a path of the characters SQLAlchemy renders back unescaped, so
# that messages and `status` name the vault as they always did (a test holds the two
# equal). Anything else (a query string, %-escapes, other characters, memory) goes through
# SQLAlchemy, which knows every form a URL may take.
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[A-Za-z0-9_.~ +/-]+)")


class Reader:
    """A DB-API connection in a read transaction, and the engine it talks to."""

    def __init__(self, connection: Any, storage: Storage, where: str) -> None:
        self.connection = connection
        self.storage = storage
        self.where = where  # the vault's URL without its password, for messages

    def sql(self, text: str) -> str:
        """`text` with `?` markers in the driver's parameter style."""
        marker = self.storage.marker
        return text if marker == "?" else text.replace("?", marker)

    def rows(self, text: str, parameters: tuple[object, ...] = ()) -> list[Row]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(self.sql(text), parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, text: str, parameters: tuple[object, ...] = ()) -> Row | None:
        found = self.rows(text, parameters)
        return found[0] if found else None

    def scalar(self, text: str, parameters: tuple[object, ...] = ()) -> Any:
        """The first column of the first row; None when there is no row."""
        row = self.first(text, parameters)
        return None if row is None else row[0]

    def stream(self, text: str, parameters: tuple[object, ...] = ()) -> Iterator[Row]:
        """Rows fetched in batches as they are read (a server-side cursor where the engine
        has one): for a walk of the whole log. Close it (contextlib.closing) when stopping
        early."""
        return self.storage.stream_rows(self.connection, text, parameters)

    def has_table(self, name: str) -> bool:
        return self.first(self.storage.table_exists_sql, (name,)) is not None

    def quote(self, name: str) -> str:
        """A table or column name (a schema's, so never a constant of this code) as SQL."""
        return self.storage.quote(name)


def as_reader(source: Reader | Connection) -> Reader:
    """A Reader on a SQLAlchemy connection's own driver connection, in its transaction."""
    if isinstance(source, Reader):
        return source
    from eventvault import storage

    url = source.engine.url
    return Reader(source.connection.driver_connection, storage.for_connection(source),
                  url.render_as_string(hide_password=True))


def sqlite_file(url: str | None) -> Path | None:
    """The file of a plain SQLite file URL (_PLAIN_SQLITE), None for any other URL."""
    found = _PLAIN_SQLITE.fullmatch(url_text(url))
    return None if found is None else Path(found["path"])


@contextlib.contextmanager
def read_vault(url: str | None, vault: Callable[[], Vault]) -> Iterator[Reader]:
    """A Reader on the vault at `url` (as `--db` gives it: None is EVENTVAULT_DB or
    ./eventvault.db), checked to be a vault at this code's schema revision. `vault` gives
    the Vault on that URL, for any URL but a plain SQLite file's (the caller's own Vault, so
    its engine serves every query of the command)."""
    path = sqlite_file(url)
    if path is None:
        with vault().read() as reader:
            yield reader
        return
    where = url_text(url)
    if not path.exists():  # said as Vault.connect says it; mode=ro would not create it
        raise NotAVaultError(f"{where}: no such vault; run `eventvault init` first")
    from eventvault.storage.sqlite import STORAGE

    with connection_errors(where) as opened:
        connection = STORAGE.connect_read_only(path)
        opened.set()
        try:
            connection.execute("BEGIN")  # one snapshot for every query (WAL mode)
            reader = Reader(connection, STORAGE, where)
            schema.require_current(reader, where)
            yield reader
        finally:
            connection.close()  # ends the read transaction
