"""Opening a vault for reading, without SQLAlchemy where it can: the read commands' way in.

A SQLite file named by a plain `sqlite:///PATH` URL is opened read-only with the standard
library's sqlite3, so `status` and the audit start without SQLAlchemy, whose import alone
takes three times an `eventvault --version` (bench/README.md, issue 14); any other URL
(PostgreSQL, MariaDB, SQLite URLs with options) reads through the caller's `Vault`, so the
engine's settings apply as for every other command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from eventvault import schema
from eventvault.db_errors import connection_errors, url_text
from eventvault.errors import NotAVaultError
from eventvault.reader import Reader, sqlite_file

if TYPE_CHECKING:
    from eventvault.vault import Vault


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
