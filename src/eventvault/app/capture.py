"""Read an application's database into a state, and the changes since the last capture.

One consistent read (connect.reading): every table as of one moment. Rows are named by UUID
(identity.py) in dependency order, so a natural key holding a reference can use the referenced
row's UUID; then every foreign key value is replaced by the UUID of the row it points at.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import partial
from itertools import repeat
from operator import contains, is_not
from typing import Any

from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Connection, Engine

from eventvault.app.columns import normal_decimal, read_expression, to_stored
from eventvault.app.connect import reading
from eventvault.app.identity import IdentityMap, natural_uuid
from eventvault.app.mapping import AppField, AppMapping, AppReference, AppTable
from eventvault.app.state import Change, State, StateView, diff
from eventvault.errors import IntegrityError, ValidationError
from eventvault.schemadoc.kinds import DECIMAL_MAX_CHARS, EPOCH, INT_MAX, INT_MIN, KindError

_EPOCH_NAIVE = datetime(1970, 1, 1)  # a column without a zone holds UTC (columns.to_stored)
_MICROSECOND = timedelta(microseconds=1)


def app_tables(connection: Connection, mapping: AppMapping) -> dict[str, Table]:
    """The reflected application tables of `mapping`, by type; a missing table or column is
    refused by name (the application's schema is not the one attached)."""
    names = [t.table for t in mapping.tables]
    metadata = MetaData()
    present = set(connection.dialect.get_table_names(connection))
    missing = [n for n in names if n not in present]
    if missing:
        raise ValidationError(f"the application database has no table {', '.join(missing)}; "
                              "is it the attached application, migrated?")
    metadata.reflect(connection, only=names)
    tables = {}
    for spec in mapping.tables:
        table = metadata.tables[spec.table]
        columns = [spec.pk] + [f.column for f in spec.fields] + [r.column for r in spec.references]
        absent = [c for c in columns if c not in table.c]
        if absent:
            raise ValidationError(f"table {spec.table} has no column {', '.join(absent)}; "
                                  "is it the attached application, migrated?")
        tables[spec.type] = table
    return tables


def referenced_columns(mapping: AppMapping) -> dict[str, set[str]]:
    """For each type, the columns other tables' foreign keys point at (usually its key)."""
    found: dict[str, set[str]] = {t.type: set() for t in mapping.tables}
    for spec in mapping.tables:
        for reference in spec.references:
            found[reference.target].add(reference.target_column)
    return found


def _field_value(spec: AppTable, item: AppField, key: Any, value: Any) -> Any:
    try:
        stored = to_stored(item.kind, value)
    except KindError as error:
        raise ValidationError(f"table {spec.table} row {key!r} column {item.column}: "
                              f"{error}") from None
    if item.kind == "decimal" and stored is not None:
        return normal_decimal(stored, item.scale)  # type: ignore[arg-type]
    return stored


_PRESENT = partial(is_not, None)
_NONE = type(None)


def _stored_column(spec: AppTable, item: AppField, column: Sequence[Any],
                   keys: Sequence[Any]) -> Sequence[Any]:
    """A column's values (`keys`: its rows' primary keys) as stored: the column itself when
    the driver gave what the kind stores, checked for the whole column in C; datetimes and
    dates converted inline; anything else by `to_stored`, which gives the same."""
    kind = item.kind
    types = set(map(type, column))
    if kind == "str" and types <= {str, _NONE} and not any(
            map(contains, filter(None, column), repeat("\x00"))):
        return column
    if kind == "int" and types <= {int, _NONE}:
        present = list(filter(_PRESENT, column))
        if not present or (min(present) >= INT_MIN and max(present) <= INT_MAX):
            return column
    if kind == "bool" and types <= {bool, _NONE}:
        return column
    if kind == "datetime" and types <= {datetime, _NONE}:
        return [None if value is None else
                (value - (_EPOCH_NAIVE if value.tzinfo is None else EPOCH)) // _MICROSECOND
                for value in column]
    if kind == "date" and types <= {date, _NONE}:
        return [None if value is None else value.isoformat() for value in column]
    if kind == "decimal" and item.scale is None and types <= {float, int, _NONE}:
        return [None if value is None else _raw_decimal(spec, item, key, value)
                for key, value in zip(keys, column, strict=True)]
    return [None if value is None else _field_value(spec, item, key, value)
            for key, value in zip(keys, column, strict=True)]


def _raw_decimal(spec: AppTable, item: AppField, key: Any, value: float | int) -> str:
    """A raw SQLite number read from a decimal column without a scale (`reading_type`), as
    `_field_value` stores it: Decimal(repr()) spelt without trailing zeros, from the text."""
    text = repr(value)
    if value == 0:
        return "0"  # -0.0 is 0
    if "e" in text or "n" in text or len(text) > DECIMAL_MAX_CHARS:
        return _field_value(spec, item, key, value)  # 1e+16, inf, nan: kinds decides
    return text.rstrip("0").rstrip(".") if "." in text else text


def _referenced_column(spec: AppTable, reference: AppReference, column: Sequence[Any],
                       keys: Sequence[Any], index: dict[tuple[str, str], dict[Any, str]]
                       ) -> Sequence[Any]:
    """A foreign key column's values as the UUIDs of the rows they point at."""
    lookup = index[(reference.target, reference.target_column)]
    found = list(map(lookup.get, column))
    if None not in lookup and found.count(None) == column.count(None):
        return found  # every value that is not NULL points at a row
    return [_reference(spec, key, value, reference, index)
            for key, value in zip(keys, column, strict=True)]


def read_rows(connection: Connection, mapping: AppMapping, identity: IdentityMap,
              tables: dict[str, Table] | None = None
              ) -> tuple[dict[str, dict[str, tuple[Any, ...]]], dict[str, dict[Any, str]]]:
    """The application's rows as `connection` sees them: for each type, entity UUID -> the
    stored values of its fields then its references (AppTable order, references as UUIDs);
    and for each type its rows' primary key -> UUID. Tuples, not dicts: a restore's
    verification reads every row back. `identity` gains the rows first seen and forgets the
    rows gone."""
    tables = tables or app_tables(connection, mapping)
    targets = referenced_columns(mapping)
    # (type, column) -> column value -> UUID, for turning foreign keys into UUIDs
    index: dict[tuple[str, str], dict[Any, str]] = {}
    keys: dict[str, dict[Any, str]] = {}
    pending: list[tuple[AppTable, list[Sequence[Any]], list[str]]] = []
    for spec in mapping.tables:
        table = tables[spec.type]
        dialect = connection.dialect.name
        columns = ([table.c[spec.pk]]
                   + [read_expression(table.c[f.column], f.kind, dialect) for f in spec.fields]
                   + [table.c[r.column] for r in spec.references])
        rows = connection.execute(select(*columns)).all()
        plain = len(spec.fields) + 1
        entities: list[str] = []
        for row in rows:
            if spec.natural_key:
                entities.append(identity.named(
                    natural_uuid(spec.type, _key_values(spec, row, plain, index))))
            else:
                entities.append(identity.assign(spec.table, row[0]))
        if not spec.natural_key:
            identity.retain(spec.table, {row[0] for row in rows})
        keys[spec.type] = {row[0]: entity for row, entity in zip(rows, entities, strict=True)}
        for column in targets[spec.type]:
            position = 0 if column == spec.pk else 1 + [f.column for f in spec.fields].index(
                column)
            index[(spec.type, column)] = {row[position]: entity
                                          for row, entity in zip(rows, entities, strict=True)}
        pending.append((spec, rows, entities))
    found: dict[str, dict[str, tuple[Any, ...]]] = {}
    for spec, rows, entities in pending:
        plain = len(spec.fields) + 1
        # Column by column, so that the checks and lookups run in C (a capture reads every
        # row of the application, a restore reads them back)
        by_column: list[Sequence[Any]] = (list(zip(*rows, strict=True))
                                          or [()] * (plain + len(spec.references)))
        values = [_stored_column(spec, item, by_column[i], by_column[0])
                  for i, item in enumerate(spec.fields, 1)]
        values += [_referenced_column(spec, reference, by_column[i], by_column[0], index)
                   for i, reference in enumerate(spec.references, plain)]
        values_of = dict(zip(entities, zip(*values, strict=True) if values
                             else [()] * len(entities), strict=True))
        if len(values_of) != len(entities):
            seen: set[str] = set()
            key, entity = next((k, e) for k, e in zip(by_column[0], entities, strict=True)
                               if e in seen or seen.add(e))
            raise IntegrityError(f"table {spec.table}: rows {key!r} and another share "
                                 f"natural key entity {entity}")
        found[spec.type] = values_of
    return found, keys


def read_state(connection: Connection, mapping: AppMapping, identity: IdentityMap,
               tables: dict[str, Table] | None = None) -> tuple[State, dict[str, dict[Any, str]]]:
    """The state of the application as `connection` sees it (`read_rows` as field dicts, the
    key field included), and for each type its rows' primary key -> UUID."""
    found, keys = read_rows(connection, mapping, identity, tables)
    state: State = {}
    for spec in mapping.tables:
        names = [f.name for f in spec.fields] + [r.name for r in spec.references]
        entities = {e: dict(zip(names, values, strict=True))
                    for e, values in found[spec.type].items()}
        if spec.key_field is not None:
            for key, entity in keys[spec.type].items():
                entities[entity][spec.key_field] = key
        state[spec.type] = entities
    return state, keys


def _reference(spec: AppTable, key: Any, value: Any, reference: AppReference,
               index: dict[tuple[str, str], dict[Any, str]]) -> str | None:
    if value is None:
        return None
    target = index[(reference.target, reference.target_column)].get(value)
    if target is None:
        raise IntegrityError(f"table {spec.table} row {key!r}: {reference.column} = "
                             f"{value!r} points at no row of {reference.target}")
    return target


def _key_values(spec: AppTable, row: Sequence[Any], plain: int,
                index: dict[tuple[str, str], dict[Any, str]]) -> list[Any]:
    values = []
    for name in spec.natural_key:
        item = spec.field(name)
        if item is not None:
            position = 1 + spec.fields.index(item)
            values.append(_field_value(spec, item, row[0], row[position]))
        else:
            reference = spec.reference(name)
            assert reference is not None
            offset = plain + spec.references.index(reference)
            values.append(_reference(spec, row[0], row[offset], reference, index))
    return values


def capture(engine: Engine, mapping: AppMapping, previous: StateView,
            identity: IdentityMap) -> tuple[list[Change], State]:
    """The changes from `previous` to the application's state now, and that state. Nothing
    changed: no changes. `identity` is updated in place (the caller persists it)."""
    with reading(engine) as connection:
        current, _ = read_state(connection, mapping, identity)
    return diff(previous, current, mapping), current
