"""Append an application's changes to the vault as events, in batches.

The generic entity commands (entities.py) write one entity at a time and look each reference
up by a query: right for a person's command, ~10x too slow for a capture of 200,000 rows.
Here, inside the caller's `Vault.entities` transaction: one event per change through the
same `Appender` (hash chain, versions checked by its tracker), and the projection tables
written with one executemany per type and set of columns. A capture's changes come in
dependency order (state.diff): creations type by type, so a type's rows are inserted, and
their row IDs known, before the rows that reference them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from sqlalchemy import Table, bindparam, func, select

from eventvault import storage
from eventvault.app.state import Change
from eventvault.entities import Entities
from eventvault.events import CREATED, DELETED, UPDATED
from eventvault.schemadoc import TypeSpec


class _Rows:
    """Per type: entity UUID -> (projection row ID, version), read when first needed."""

    def __init__(self, entities: Entities) -> None:
        self.entities = entities
        self.known: dict[str, dict[str, tuple[int, int]]] = {}

    def of(self, type_name: str) -> dict[str, tuple[int, int]]:
        found = self.known.get(type_name)
        if found is None:
            table = self.entities.tables[type_name]
            found = self.known[type_name] = {
                uuid: (row_id, version) for uuid, row_id, version in
                self.entities.connection.execute(select(table.c.uuid, table.c.id,
                                                        table.c.version))}
        return found


def record(entities: Entities, changes: Sequence[Change]) -> None:
    """Append `changes` and apply them to the projection, in the caller's transaction."""
    rows = _Rows(entities)
    for (action, type_name), group in groupby(changes, key=lambda c: (c.action, c.type)):
        spec = entities.spec(type_name)
        batch = list(group)
        if action == CREATED:
            _create(entities, rows, spec, batch)
        elif action == UPDATED:
            _update(entities, rows, spec, batch)
        else:
            _delete(entities, rows, spec, batch)


def _append(entities: Entities, spec: TypeSpec, entity: str, version: int, action: str,
            payload: dict[str, Any]) -> None:
    # The library's one checked append (the role policy, the limits of stored values); the
    # projection rows are this module's job.
    entities.append_event(spec, entity, version, action, payload)


def _columns(rows: _Rows, spec: TypeSpec, payload: dict[str, Any]) -> dict[str, Any]:
    """Projection columns of `payload`: a reference is its target's row ID."""
    columns = {}
    for name, value in payload.items():
        reference = spec.reference(name)
        if reference is None:
            columns[name] = value
        else:
            columns[reference.column] = None if value is None else \
                rows.of(reference.target)[value][0]
    return columns


def _create(entities: Entities, rows: _Rows, spec: TypeSpec, batch: list[Change]) -> None:
    table = entities.tables[spec.name]
    connection = entities.connection
    blank = {f.name: f.default for f in spec.fields} | {r.name: None for r in spec.references}
    names = [f.name for f in spec.fields]
    references = [(r.name, rows.of(r.target)) for r in spec.references]
    inserted = []
    for change in batch:
        payload = {**blank, **change.fields}
        _append(entities, spec, change.entity, 1, CREATED, payload)
        inserted.append((change.entity, 1, *[payload[n] for n in names], *[
            None if (target := payload[n]) is None else known[target][0]
            for n, known in references]))
    highest = connection.execute(select(func.max(table.c.id))).scalar() or 0
    # The driver's executemany with plain SQL: SQLAlchemy's per-row parameter processing
    # was a third of a 200,000-row capture. The values are already the columns' own.
    quote = connection.dialect.identifier_preparer.quote
    columns = ["uuid", "version", *names, *(r.column for r in spec.references)]
    marker = storage.for_connection(connection).marker
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
           f"VALUES ({', '.join([marker] * len(columns))})")
    for start in range(0, len(inserted), 5000):
        connection.exec_driver_sql(sql, inserted[start:start + 5000])
    known = rows.of(spec.name)
    known.update((uuid, (row_id, 1)) for uuid, row_id in entities.connection.execute(
        select(table.c.uuid, table.c.id).where(table.c.id > highest)))


def _update(entities: Entities, rows: _Rows, spec: TypeSpec, batch: list[Change]) -> None:
    table = entities.tables[spec.name]
    known = rows.of(spec.name)
    by_names: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in batch:
        row_id, version = known[change.entity]
        _append(entities, spec, change.entity, version + 1, UPDATED, dict(change.fields))
        known[change.entity] = (row_id, version + 1)
        columns = _columns(rows, spec, dict(change.fields))
        by_names.setdefault(tuple(sorted(columns)), []).append(
            {"k_id": row_id, "v_version": version + 1,
             **{f"v_{c}": v for c, v in columns.items()}})
    for names, updates in by_names.items():
        statement = table.update().where(table.c.id == bindparam("k_id")).values(
            {"version": bindparam("v_version"), **{c: bindparam(f"v_{c}") for c in names}})
        for chunk in _chunks(updates):
            entities.connection.execute(statement, chunk)


def _delete(entities: Entities, rows: _Rows, spec: TypeSpec, batch: list[Change]) -> None:
    table: Table = entities.tables[spec.name]
    known = rows.of(spec.name)
    gone = []
    for change in batch:
        row_id, version = known.pop(change.entity)
        _append(entities, spec, change.entity, version + 1, DELETED, {})
        gone.append({"k_id": row_id})
    statement = table.delete().where(table.c.id == bindparam("k_id"))
    for chunk in _chunks(gone):
        entities.connection.execute(statement, chunk)


def _chunks(items: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
