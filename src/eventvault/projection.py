"""The projection: writing entities to the relational tables, and reading them back.

Every reference in an event is a UUID; in the tables it is the integer ID the current
database gave the referenced row. The command path resolves it through the domain's
identity map and writes rows with `RowWriter`; replay numbers a whole folded state itself
(`projection_rows`) and bulk-loads it (`load_rows`); reading turns IDs back into UUIDs
(projection_read.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection

from eventvault import storage
from eventvault.catalog import Catalog
from eventvault.fold import VALUES, StateFold
from eventvault.projection_read import read_entities
from eventvault.store import stream_rows
from eventvault.tables import projection, projection_for

LOAD_BATCH = 10_000


class RowWriter:
    """Projection rows for the command path, through the driver's own cursor.

    Each statement's text is built once; a command then costs one driver call per row.
    SQLAlchemy's per-statement machinery, even for plain SQL, cost more than the database.
    The cursor belongs to the caller's connection, so it works inside its transaction.
    """

    def __init__(self, connection: Connection,
                 tables: dict[str, Any] | None = None) -> None:
        self._tables = projection if tables is None else tables
        self._cursor = connection.connection.cursor()
        engine_storage = storage.for_connection(connection)
        self._marker = engine_storage.marker
        self._returning = engine_storage.returning
        # Column names quoted where the engine reserves them (`key` on MariaDB).
        self._quote = connection.dialect.identifier_preparer.quote
        self._sql: dict[tuple[str, ...], str] = {}

    def _statement(self, key: tuple[str, ...], build: Callable[[], str]) -> str:
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = build()
        return sql

    def select(self, type_name: str, column: str, value: object) -> dict[str, Any] | None:
        table = self._tables[type_name].name
        sql = self._statement(("select", table, column),
                              lambda: f"SELECT * FROM {table} WHERE {self._quote(column)} = "
                                      f"{self._marker}")
        self._cursor.execute(sql, (value,))
        row = self._cursor.fetchone()
        if row is None:
            return None
        return dict(zip((d[0] for d in self._cursor.description), row, strict=True))

    def insert(self, type_name: str, columns: dict[str, Any]) -> int:
        table = self._tables[type_name].name
        names = tuple(columns)

        def build() -> str:
            markers = ", ".join([self._marker] * len(names))
            sql = (f"INSERT INTO {table} ({', '.join(map(self._quote, names))}) "
                   f"VALUES ({markers})")
            return sql + " RETURNING id" if self._returning else sql

        self._cursor.execute(self._statement(("insert", table, *names), build),
                             tuple(columns.values()))
        if self._returning:
            return int(self._cursor.fetchone()[0])
        return int(self._cursor.lastrowid)

    def update(self, type_name: str, row_id: int, columns: dict[str, Any]) -> None:
        table = self._tables[type_name].name
        names = tuple(columns)
        sql = self._statement(
            ("update", table, *names),
            lambda: f"UPDATE {table} "
                    f"SET {', '.join(f'{self._quote(n)} = {self._marker}' for n in names)} "
                    f"WHERE id = {self._marker}",
        )
        self._cursor.execute(sql, (*columns.values(), row_id))

    def delete(self, type_name: str, row_id: int) -> None:
        table = self._tables[type_name].name
        sql = self._statement(("delete", table),
                              lambda: f"DELETE FROM {table} WHERE id = {self._marker}")
        self._cursor.execute(sql, (row_id,))


ProjectionRows = Iterator[tuple[str, list[tuple[Any, ...]]]]  # (type name, rows, IDs included)


def projection_rows(state: StateFold, *, give_up: bool = False,
                    chunk: int = LOAD_BATCH) -> ProjectionRows:
    """Every live entity of a folded state as rows for empty projection tables, in chunks of
    `chunk` rows: type by type in registry order (referenced types first), each type's rows
    in ID order. `give_up`: the fold's entities are cleared and each chunk's entities let go
    as it is built, so a replay never holds the fold and the rows in full at once.

    Each type's rows get the IDs 1..n in order, so a reference is resolved to its target's
    new ID without asking the database; only the UUIDs something refers to are mapped
    (at 1M live documents, a map of them all was ~100 MB). Rows are built column by column
    (a list per column, zipped into tuples) so that the loops run in C.
    """
    types = state.catalog.schema.types
    uuids_of: dict[str, list[str]] = {entity.name: [] for entity in types}
    records_of: dict[str, list[tuple[Any, ...]]] = {entity.name: [] for entity in types}
    for entity_id, record in state.entities.items():  # (type, version, *values)
        uuids_of[record[0]].append(entity_id)
        records_of[record[0]].append(record)
    if give_up:
        state.entities.clear()
    referenced: set[str] = set()
    for entity in types:
        for i, _reference in enumerate(entity.references, VALUES + len(entity.fields)):
            referenced.update(record[i] for record in records_of[entity.name])
    targets = {reference.target for entity in types for reference in entity.references}
    new_ids: dict[str, dict[str, int]] = {}
    for entity in types:
        uuids, found = uuids_of.pop(entity.name), records_of.pop(entity.name)
        if entity.name in targets:
            new_ids[entity.name] = {uuid: row_id for row_id, uuid in enumerate(uuids, 1)
                                    if uuid in referenced}
        first = 1
        while found:
            part, part_uuids = found[:chunk], uuids[:chunk]
            if give_up:
                del found[:chunk], uuids[:chunk]
            else:
                found, uuids = found[chunk:], uuids[chunk:]
            columns = [[record[i] for record in part]
                       for i in range(1, VALUES + len(entity.fields))]  # version, fields
            for i, reference in enumerate(entity.references, VALUES + len(entity.fields)):
                # `get`: an absent (None) reference stays None; the fold has checked that
                # every other one exists, and the replay's read-back would catch one that
                # went missing.
                columns.append(list(map(new_ids[reference.target].get,
                                        [record[i] for record in part])))
            del part
            yield entity.name, list(zip(range(first, first + len(part_uuids)), part_uuids,
                                        *columns, strict=True))
            first += len(part_uuids)


def load_rows(connection: Connection, catalog: Catalog, rows: ProjectionRows) -> None:
    """Write prepared rows into empty projection tables, chunk by chunk as `rows` gives them
    (referenced rows first), through the driver's executemany: the bulk path of a replay.
    The rows carry their IDs, so each table's next ID is moved past them (storage/)."""
    engine_storage = storage.for_connection(connection)
    cursor = connection.connection.cursor()
    tables = projection_for(catalog)
    quote = connection.dialect.identifier_preparer.quote
    columns_of: dict[str, list[str]] = {}
    for type_name, chunk in rows:
        columns = columns_of.get(type_name)
        if columns is None:
            entity = catalog.schema.type(type_name)
            assert entity is not None
            columns = columns_of[type_name] = list(map(quote, [
                "id", "uuid", "version", *(f.name for f in entity.fields),
                *(r.column for r in entity.references)]))
        engine_storage.load_rows(cursor, tables[type_name].name, columns, chunk, LOAD_BATCH)
        del chunk  # each chunk goes before the next is built
    cursor.close()


def differences(connection: Connection, state: StateFold) -> list[str]:
    """Where the projection tables differ from a folded state, one line per entity.

    The tables are read through the same query as every other reader (references joined
    back to UUIDs), so this checks what a reader would see, not how it was written.
    """
    found: list[str] = []
    seen: set[str] = set()
    catalog = state.catalog
    for type_name in catalog.type_names:
        for entity_id, values in read_entities(connection, catalog, type_name):
            seen.add(entity_id)
            expected = state.values(entity_id)
            if expected is None:
                found.append(f"{type_name} {entity_id} is in the tables but not in the log")
            elif expected[0] != type_name or expected[1] != values:
                found.append(f"{type_name} {entity_id} differs from the log")
    for entity_id, record in state.entities.items():
        if entity_id not in seen:
            found.append(f"{record[0]} {entity_id} is in the log but not in the tables")
    # The bookkeeping column too: the command path must never act on a wrong `version`.
    for entity in catalog.schema.types:
        for entity_id, version in stream_rows(
                connection, f"SELECT uuid, version FROM {entity.table}"):
            expected = state.version(entity_id)
            if expected is not None and version != expected:
                found.append(f"{entity.name} {entity_id} has version {version} in the tables, "
                             f"{expected} in the log")
    return found
