"""The projection: writing entities to the relational tables, and reading them back.

Every reference in an event is a UUID; in the tables it is the integer ID the current
database gave the referenced row. The command path resolves it through the domain's
identity map and writes rows with `RowWriter`; replay writes a whole folded state with
`load_state`; reading turns IDs back into UUIDs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql import Select

from eventvault.events import FieldValue
from eventvault.fold import StateFold
from eventvault.registry import ENTITY_TYPES, REGISTRY, TYPE_NAMES, EntityType
from eventvault.store import stream_rows
from eventvault.tables import projection

LOAD_BATCH = 10_000


class RowWriter:
    """Projection rows for the command path, through the driver's own cursor.

    Each statement's text is built once; a command then costs one driver call per row.
    SQLAlchemy's per-statement machinery, even for plain SQL, cost more than the database.
    The cursor belongs to the caller's connection, so it works inside its transaction.
    """

    def __init__(self, connection: Connection) -> None:
        self._cursor = connection.connection.cursor()
        self._marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
        self._returning = connection.dialect.name == "postgresql"
        self._sql: dict[tuple[str, ...], str] = {}

    def _statement(self, key: tuple[str, ...], build: Callable[[], str]) -> str:
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = build()
        return sql

    def select(self, type_name: str, column: str, value: object) -> dict[str, Any] | None:
        table = projection[type_name].name
        sql = self._statement(("select", table, column),
                              lambda: f"SELECT * FROM {table} WHERE {column} = {self._marker}")
        self._cursor.execute(sql, (value,))
        row = self._cursor.fetchone()
        if row is None:
            return None
        return dict(zip((d[0] for d in self._cursor.description), row, strict=True))

    def insert(self, type_name: str, columns: dict[str, Any]) -> int:
        table = projection[type_name].name
        names = tuple(columns)

        def build() -> str:
            markers = ", ".join([self._marker] * len(names))
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({markers})"
            return sql + " RETURNING id" if self._returning else sql

        self._cursor.execute(self._statement(("insert", table, *names), build),
                             tuple(columns.values()))
        if self._returning:
            return int(self._cursor.fetchone()[0])
        return int(self._cursor.lastrowid)

    def update(self, type_name: str, row_id: int, columns: dict[str, Any]) -> None:
        table = projection[type_name].name
        names = tuple(columns)
        sql = self._statement(
            ("update", table, *names),
            lambda: f"UPDATE {table} SET {', '.join(f'{n} = {self._marker}' for n in names)} "
                    f"WHERE id = {self._marker}",
        )
        self._cursor.execute(sql, (*columns.values(), row_id))

    def delete(self, type_name: str, row_id: int) -> None:
        table = projection[type_name].name
        sql = self._statement(("delete", table),
                              lambda: f"DELETE FROM {table} WHERE id = {self._marker}")
        self._cursor.execute(sql, (row_id,))


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
    # The query has no parameters: compiled once to plain SQL, its rows come straight from
    # the driver (snapshot and replay read every entity to compute the state digest).
    sql = str(_entity_query(entity).compile(dialect=connection.dialect))
    for row in stream_rows(connection, sql):
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
    each type's IDs are read back once into the identity map used by the next types. Rows
    go through the driver's executemany as tuples: the bulk path of a replay.
    """
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    cursor = connection.connection.cursor()
    identity: dict[str, dict[str, int]] = {}
    by_type: dict[str, list[tuple[str, list[FieldValue]]]] = {name: [] for name in TYPE_NAMES}
    for type_name, entity_id, values in state.live():
        by_type[type_name].append((entity_id, values))
    for entity in ENTITY_TYPES:
        table = projection[entity.name].name
        plain = len(entity.fields)
        targets = [identity[r.target] for r in entity.references]
        columns = ["uuid", "version", *(f.name for f in entity.fields),
                   *(r.column for r in entity.references)]
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join([marker] * len(columns))})")
        rows = (
            (entity_id, state.versions[entity_id], *values[:plain],
             *(None if value is None else target[value]  # type: ignore[index]
               for target, value in zip(targets, values[plain:], strict=True)))
            for entity_id, values in by_type.pop(entity.name)
        )
        while batch := list(itertools.islice(rows, LOAD_BATCH)):
            cursor.executemany(sql, batch)
        cursor.execute(f"SELECT uuid, id FROM {table}")
        identity[entity.name] = dict(cursor.fetchall())
    cursor.close()
