"""The vault's tables as a whole: a new vault's declared projection tables, the names of all
its own tables, dropping them all."""

from __future__ import annotations

from sqlalchemy import Connection, inspect

from eventvault.catalog import LEGACY_HASH, Catalog
from eventvault.tables import events, log_state, projection, projection_for, vault_meta
from eventvault.vault_schema import history


def use_tables(connection: Connection, catalog: Catalog) -> bool:
    """Give a new vault (its projection tables empty) the tables of `catalog`: the dms v1
    tables alembic created are replaced by the declared ones. False when `catalog` is the
    built-in dms v1 (nothing to do)."""
    if catalog.hash == LEGACY_HASH:
        return False
    for table in reversed(projection.values()):  # referring tables first
        table.drop(connection, checkfirst=True)
    for table in projection_for(catalog).values():  # dependency order: targets first
        table.create(connection)
    return True


def own_tables(connection: Connection) -> set[str]:
    """The names of the vault's tables in the connection's database (alembic's, the log's,
    the maintained state's, its schema's projection), none if it holds no vault; another
    application's tables beside them are not among them."""
    present = set(inspect(connection).get_table_names())
    if events.name not in present:
        return set()
    catalog = history(connection).catalog
    return present & {"alembic_version", events.name, log_state.name, vault_meta.name,
                      *(table.name for table in projection_for(catalog).values())}


def drop_vault(connection: Connection) -> None:
    """Drop the whole vault: a declared schema's own tables first, then alembic's (its
    downgrade expects the dms v1 tables it created, which a declared schema replaced)."""
    from eventvault import schema  # alembic, imported on use

    catalog = history(connection).catalog
    if catalog.hash != LEGACY_HASH:
        for table in reversed(projection_for(catalog).values()):
            table.drop(connection, checkfirst=True)
        for table in projection.values():
            table.create(connection, checkfirst=True)
    schema.drop_all(connection)
