"""Reading a vault through a plain DB-API connection, in one read transaction.

The read-only queries of `status` and the audit are written once, as SQL text with `?`
markers, against a `Reader`; `Reader.sql` is the one place that adapts them to the driver's
parameter style. A Reader wraps either the standard library's sqlite3 connection to a SQLite
file (`vault_read.py` opens it) or a SQLAlchemy connection's own driver connection, in the
transaction `Vault.connect` began (`as_reader`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eventvault.db_errors import url_text
from eventvault.storage import Storage

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine.url import URL

Row = tuple[Any, ...]

# A plain SQLite file URL: a path of the characters SQLAlchemy renders back unescaped, so
# that messages and `status` name the vault as they always did (a test holds the two
# equal). Anything else (a query string, %-escapes, other characters, memory) goes through
# SQLAlchemy, which knows every form a URL may take.
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[A-Za-z0-9_.~ +/-]+)")


class Reader:
    """A DB-API connection in a read transaction, and the engine it talks to."""

    def __init__(self, connection: Any, storage: Storage, where: str | URL) -> None:
        self.connection = connection
        self.storage = storage
        self._where = where

    @property
    def where(self) -> str:
        """The vault's URL without its password, for messages; a URL is rendered on first
        use (a write transaction makes several Readers and rarely needs it)."""
        if not isinstance(self._where, str):
            self._where = self._where.render_as_string(hide_password=True)
        return self._where

    def sql(self, text: str) -> str:
        """`text` with `?` markers in the driver's parameter style."""
        return self.storage.sql(text)

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

    def has_tables(self, *names: str) -> list[bool]:
        """`has_table` of each name, asked in one query (one round trip to a server)."""
        probes = ", ".join([f"EXISTS ({self.storage.table_exists_sql})"] * len(names))
        row = self.first(f"SELECT {probes}", names)
        assert row is not None
        return [bool(found) for found in row]

    def quote(self, name: str) -> str:
        """A table or column name (a schema's, so never a constant of this code) as SQL."""
        return self.storage.quote(name)


def as_reader(source: Reader | Connection) -> Reader:
    """A Reader on a SQLAlchemy connection's own driver connection, in its transaction."""
    if isinstance(source, Reader):
        return source
    from eventvault import storage

    return Reader(source.connection.driver_connection, storage.for_connection(source),
                  source.engine.url)


def sqlite_file(url: str | None) -> Path | None:
    """The file of a plain SQLite file URL (_PLAIN_SQLITE), None for any other URL."""
    found = _PLAIN_SQLITE.fullmatch(url_text(url))
    return None if found is None else Path(found["path"])
