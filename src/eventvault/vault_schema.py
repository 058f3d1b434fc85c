"""A vault's schema as its log declares it: read from the schema events, once per process.

The schema events are few and all about one entity (catalog.SCHEMA_ENTITY), so the
(entity_id, entity_version) index finds them without walking the log; what they declare is
compiled once per process and kept by the hashes of those events.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Connection, inspect, select

from eventvault import codec
from eventvault.catalog import LEGACY_HASH, SCHEMA_ENTITY, Catalog, schema_from_payload
from eventvault.events import decode_record, unpack_payload
from eventvault.fold import SchemaHistory
from eventvault.tables import events, log_state, projection, projection_for, vault_meta

_HISTORIES: dict[tuple[bytes, ...], SchemaHistory] = {}


def history(connection: Connection) -> SchemaHistory:
    """The schemas the vault's log went through (the built-in dms v1 if it declares none)."""
    rows = connection.execute(
        select(events.c.record, events.c.hash).where(events.c.entity_id == SCHEMA_ENTITY)
        .order_by(events.c.entity_version)).all()
    key = tuple(bytes(digest) for _record, digest in rows)
    found = _HISTORIES.get(key)
    if found is None:
        found = SchemaHistory()
        for stored, digest in rows:
            event = decode_record(codec.from_stored(bytes(stored)), bytes(digest))
            schema = schema_from_payload(unpack_payload(event.payload), f"seq {event.seq}")
            # Removals were checked against live entities when written and by `verify`.
            found.declare(event.seq, schema, Counter(), first=event.seq == 1)
        _HISTORIES[key] = found
    return found



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
