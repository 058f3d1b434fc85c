"""The projection: applying events to the relational tables, and reading entities back.

Every reference in an event is a UUID; here, and only here, it becomes the integer ID the
current database gave the referenced row (the identity map), and back again when reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql import Select

from eventvault.errors import DanglingReferenceError, IntegrityError
from eventvault.events import ACCESS_DENIED, CREATED, DELETED, Event, FieldValue, unpack_payload
from eventvault.fold import StateFold
from eventvault.registry import ENTITY_TYPES, REGISTRY, TYPE_NAMES, EntityType
from eventvault.tables import projection

LOAD_BATCH = 10_000


def resolve_id(connection: Connection, type_name: str, entity_id: str) -> int | None:
    table = projection[type_name]
    return connection.execute(select(table.c.id).where(table.c.uuid == entity_id)).scalar()


def apply(connection: Connection, event: Event) -> None:
    """Apply one already validated event of a command to the projection."""
    entity = REGISTRY[event.entity_type]
    table = projection[entity.name]
    row: dict[str, Any] = {"version": event.entity_version}
    if event.event_type not in (DELETED, ACCESS_DENIED):
        row.update(_columns(connection, event, entity, unpack_payload(event.payload)))
    if event.event_type == CREATED:
        defaults = {f.name: f.default for f in entity.fields if f.name not in row}
        connection.execute(table.insert(), [{**defaults, **row, "uuid": event.entity_id}])
        return
    where = table.c.uuid == event.entity_id
    if event.event_type == DELETED:
        result = connection.execute(table.delete().where(where))
    else:
        result = connection.execute(table.update().where(where).values(**row))
    if result.rowcount != 1:
        raise IntegrityError(
            f"seq {event.seq}: {entity.name} {event.entity_id} is missing from the projection"
        )


def _columns(
    connection: Connection, event: Event, entity: EntityType, fields: dict[str, FieldValue]
) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for name, value in fields.items():
        reference = entity.reference(name)
        if reference is None:
            columns[name] = value
        elif value is None:
            columns[reference.column] = None
        else:
            target_id = resolve_id(connection, reference.target, str(value))
            if target_id is None:
                raise DanglingReferenceError(
                    f"seq {event.seq}: {entity.name} {event.entity_id} field {name!r} refers "
                    f"to {reference.target} {value}, which does not exist"
                )
            columns[reference.column] = target_id
    return columns


def _entity_query(entity: EntityType) -> Select[Any]:
    """Rows of one type with every reference turned back into the target's UUID."""
    table = projection[entity.name]
    columns: list[Any] = [table.c.uuid, *(table.c[f.name] for f in entity.fields)]
    source: Any = table
    for reference in entity.references:
        target = projection[reference.target].alias(f"ref_{reference.name}")
        source = source.outerjoin(target, target.c.id == table.c[reference.column])
        columns.append(target.c.uuid)
    return select(*columns).select_from(source).order_by(table.c.uuid)


def read_entities(connection: Connection, type_name: str) -> Iterator[tuple[str, list[FieldValue]]]:
    """(uuid, values in registry order) for every row of a type, sorted by UUID."""
    entity = REGISTRY[type_name]
    bool_positions = [i for i, f in enumerate(entity.fields) if f.kind == "bool"]
    result = connection.execute(_entity_query(entity), execution_options={"yield_per": LOAD_BATCH})
    for row in result:
        values = list(row[1:])
        for position in bool_positions:  # SQLite hands booleans back as 0/1
            values[position] = bool(values[position])
        yield row[0], values


def read_state(connection: Connection) -> Iterator[tuple[str, str, list[FieldValue]]]:
    for type_name in sorted(TYPE_NAMES):
        for entity_id, values in read_entities(connection, type_name):
            yield type_name, entity_id, values


def counts(connection: Connection) -> dict[str, int]:
    return {
        name: connection.execute(select(func.count()).select_from(projection[name])).scalar_one()
        for name in TYPE_NAMES
    }


def load_state(connection: Connection, state: StateFold) -> None:
    """Write a folded state into empty projection tables, resolving UUIDs to new IDs.

    Types go in registry order, so every referenced row exists before its referrers, and
    each type's IDs are read back once into the identity map used by the next types.
    """
    identity: dict[str, dict[str, int]] = {}
    by_type: dict[str, list[tuple[str, list[FieldValue]]]] = {name: [] for name in TYPE_NAMES}
    for type_name, entity_id, values in state.live():
        by_type[type_name].append((entity_id, values))
    for entity in ENTITY_TYPES:
        table = projection[entity.name]
        plain = len(entity.fields)
        names = [f.name for f in entity.fields]
        columns = [r.column for r in entity.references]
        targets = [identity[r.target] for r in entity.references]
        rows: list[dict[str, Any]] = []
        for entity_id, values in by_type[entity.name]:
            row: dict[str, Any] = dict(zip(names, values[:plain], strict=True))
            for column, target, value in zip(columns, targets, values[plain:], strict=True):
                row[column] = None if value is None else target[value]  # type: ignore[index]
            row["uuid"] = entity_id
            row["version"] = state.versions[entity_id]
            rows.append(row)
            if len(rows) >= LOAD_BATCH:
                connection.execute(table.insert(), rows)
                rows = []
        if rows:
            connection.execute(table.insert(), rows)
        identity[entity.name] = {
            row.uuid: row.id for row in connection.execute(select(table.c.uuid, table.c.id))
        }
