"""Schema management: every schema change goes through the alembic migrations."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

import eventvault.migrations
from eventvault.errors import NotAVaultError

MIGRATIONS = Path(eventvault.migrations.__file__).parent


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest migration's revision (read from the scripts once per process)."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the migrations have no head revision"
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the schema to head inside the caller's transaction."""
    command.upgrade(_config(connection), "head")


def drop_all(connection: Connection) -> None:
    """Downgrade to base: drops every table, trigger and the events log itself."""
    command.downgrade(_config(connection), "base")


def is_vault(connection: Connection) -> bool:
    return inspect(connection).has_table("events")


def require_current(connection: Connection, where: str) -> None:
    """Refuse to work on a database that is not a vault at the schema this code needs."""
    if not is_vault(connection):
        raise NotAVaultError(f"{where} is not an EventVault vault; run `eventvault init` first")
    revision = current_revision(connection)
    if revision != head_revision():
        raise NotAVaultError(
            f"{where} has schema revision {revision or 'none'}, this eventvault needs "
            f"{head_revision()}; run `eventvault init` to upgrade it"
        )
