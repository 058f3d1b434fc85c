"""Schema management: every schema change goes through the alembic migrations.

alembic is imported only by the functions that migrate (`upgrade`, `drop_all`): reading a
vault needs only its revision, which is one row of `alembic_version`, and the newest
revision of the migrations, which is read from the scripts' own text. Read commands start
faster for it (alembic and its script loading cost 0.1-0.3 s on every run).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

import eventvault.migrations
from eventvault import reader as readers
from eventvault import storage
from eventvault.errors import NotAVaultError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection

    from eventvault.reader import Reader

MIGRATIONS = Path(eventvault.migrations.__file__).parent
VERSION_TABLE = "alembic_version"  # alembic's default, which migrations/env.py keeps
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.M)


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration's revision: the one no other migration revises.

    Read from the scripts' `revision = "..."` and `down_revision = ...` lines rather than
    through alembic (a test holds the answer equal to alembic's own).
    """
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(script.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        revisions.add(found["revision"].strip("\"'"))
        revised.update(re.findall(r"[\"']([^\"']+)[\"']", found.get("down_revision", "")))
    heads = revisions - revised
    assert len(heads) == 1, f"the migrations must have exactly one head, not {sorted(heads)}"
    return heads.pop()


def current_revision(source: Reader | Connection) -> str | None:
    """The vault's revision, read as alembic stores it (one row, one column)."""
    reader = readers.as_reader(source)
    if not reader.has_table(VERSION_TABLE):
        return None
    return _recorded_revision(reader)


def _recorded_revision(reader: Reader) -> str | None:
    rows = reader.rows(f"SELECT version_num FROM {VERSION_TABLE}")
    if len(rows) > 1:
        raise NotAVaultError(f"the vault records {len(rows)} schema revisions; expected one")
    return str(rows[0][0]) if rows else None


def upgrade(connection: Connection) -> None:
    """Bring the schema to head inside the caller's transaction."""
    from alembic import command

    storage.for_connection(connection).prepare(connection)
    command.upgrade(_config(connection), "head")


def drop_all(connection: Connection) -> None:
    """Downgrade to base: drops every table, trigger and the events log itself."""
    from alembic import command

    command.downgrade(_config(connection), "base")


def is_vault(source: Reader | Connection) -> bool:
    return readers.as_reader(source).has_table("events")


def require_current(source: Reader | Connection, where: str) -> None:
    """Refuse to work on a database that is not a vault at the schema this code needs."""
    # Both tables asked about at once: every transaction begins here (on a server, each
    # query is a round trip).
    reader = readers.as_reader(source)
    has_log, has_revision = reader.has_tables("events", VERSION_TABLE)
    if not has_log:
        raise NotAVaultError(f"{where} is not an EventVault vault; run `eventvault init` first")
    revision = _recorded_revision(reader) if has_revision else None
    if revision != head_revision():
        raise NotAVaultError(
            f"{where} has schema revision {revision or 'none'}, this eventvault needs "
            f"{head_revision()}; run `eventvault init` to upgrade it"
        )
