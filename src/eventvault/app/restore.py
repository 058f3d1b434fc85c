"""Write a vault's state of an application into a database that has the application's schema.

The target is typically freshly migrated and initialised by the application itself. In one
transaction: rows whose natural key the target already has are updated to the backed-up
values; every other row is inserted with a new primary key of the target's (above its
highest), types in dependency order; a reference to a row not written yet is set afterwards
when it may be empty (cycles, self-references); every foreign key is the target's key of the
row the reference's UUID names; sequences are moved past the new keys. Then the target is read
back in the same transaction and its counts and key-independent digest compared with the
state: any difference, dangling reference or constraint violation rolls everything back with
one line naming the table, the row's UUID and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from operator import is_not
from typing import Any

from sqlalchemy import Column, DateTime, Table, bindparam, func, select
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import JSON

from eventvault.app.capture import app_tables, read_rows, read_state
from eventvault.app.columns import AS_STORED, column_writer, expected_in, to_column
from eventvault.app.connect import writing
from eventvault.app.identity import IdentityMap
from eventvault.app.mapping import AppMapping, AppReference, AppTable
from eventvault.app.state import (
    State,
    StateView,
    field_names,
    field_values,
    first_difference,
    rows_digest,
    rows_of,
    successors,
)
from eventvault.errors import IntegrityError, ValidationError

_SHOWN = 5  # extra rows named in a refusal
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # positional parameter markers


@dataclass
class RestoreReport:
    """What a restore did (or, with dry_run, would do), per type."""

    inserted: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    kept_extra: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    digest: str = ""
    dry_run: bool = False
    identity: IdentityMap = field(default_factory=IdentityMap)
    rebound: int = 0  # rows whose new key the vault recorded (vault_link.restore)
    recreated: int = 0  # rows deleted since the point restored, recorded as successors


def check_references(state: StateView, mapping: AppMapping,
                     rows: dict[str, dict[str, tuple[Any, ...]]]) -> None:
    """Refuse a state with a reference to an entity it does not hold, or an unknown type.
    `rows` is the state as `rows_of` gives it: each reference's targets checked as a set."""
    unknown = sorted(set(state) - {t.type for t in mapping.tables})
    if unknown:
        raise ValidationError(f"the state holds types the application has not: "
                              f"{', '.join(unknown)}")
    for spec in mapping.tables:
        values_of = rows[spec.type]
        for i, reference in enumerate(spec.references, len(spec.fields)):
            held = state.get(reference.target, {})
            targets = {values[i] for values in values_of.values()}
            targets.discard(None)
            if targets.issubset(held.keys()):
                continue
            entity, target = min((e, v[i]) for e, v in values_of.items()
                                 if v[i] is not None and v[i] not in held)
            raise IntegrityError(
                f"table {spec.table} row {entity}: reference {reference.name} points at "
                f"{target}, which the backup does not hold ({reference.target})")


class _Writer:
    """One restore in progress on one connection."""

    def __init__(self, connection: Connection, mapping: AppMapping, state: StateView,
                 tables: dict[str, Table], rows: dict[str, dict[str, tuple[Any, ...]]]
                 ) -> None:
        self.connection = connection
        self.mapping = mapping
        self.state = state
        self.tables = tables
        self.keys: dict[str, dict[str, Any]] = {}  # type -> entity -> target primary key
        self.written: dict[str, set[str]] = {t.type: set() for t in mapping.tables}
        self.deferred: list[tuple[AppTable, AppReference, Any, Any, str]] = []
        self.plans: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        self.rows = rows  # type -> entity -> values, field_names order (rows_of)

    def allocate(self, spec: AppTable, entities: list[str], taken: set[Any]) -> None:
        """Target keys for the rows to insert. A row without a natural key keeps the key it
        had in the application (its `key_field`) when the target does not use it: a freshly
        migrated application's such tables are empty, so documents keep their numbers (and
        their URLs), and the vault records no rebinding. Every other row gets a key above the
        target's highest, so that no key the application handed out is reused."""
        table = self.tables[spec.type]
        if spec.surrogate:
            keys = self.keys[spec.type]
            held = (field_values(self.state.get(spec.type, {}), spec.key_field)
                    if spec.key_field else {})
            rest = []
            for entity in entities:
                wanted = held.get(entity)
                if type(wanted) is int and wanted > 0 and wanted not in taken:
                    keys[entity] = wanted
                    taken.add(wanted)
                else:
                    rest.append(entity)
            highest = self.connection.execute(select(func.max(table.c[spec.pk]))).scalar()
            start = max([highest or 0, *(keys[e] for e in entities if e in keys)]) + 1
            for offset, entity in enumerate(rest):
                keys[entity] = start + offset
        else:
            pk_field = next(f for f in spec.fields if f.column == spec.pk)
            pks = field_values(self.state[spec.type], pk_field.name)
            for entity in entities:
                self.keys[spec.type][entity] = to_column(pk_field.kind, pks[entity],
                                                         table.c[spec.pk])

    def target_value(self, reference: AppReference, entity: str) -> Any:
        """The value the target's foreign key column holds for the entity `entity`."""
        spec = self.mapping.table(reference.target)
        if reference.target_column == spec.pk:
            return self.keys[spec.type][entity]
        item = next(f for f in spec.fields if f.column == reference.target_column)
        return to_column(item.kind, self.state[spec.type][entity][item.name],
                         self.tables[spec.type].c[reference.target_column])

    def row(self, spec: AppTable, entity: str, names: Sequence[str]) -> dict[str, Any]:
        """Column values of `names` for the target; references to rows not written yet that
        may be empty are set later."""
        values = self.state[spec.type][entity]
        row: dict[str, Any] = {}
        for name, column_name, kind, column, reference, target_keys in self.plan(spec, names):
            value = values.get(name)
            if reference is None:
                row[column_name] = value if kind is None else to_column(kind, value, column)
            elif value is None:
                row[column_name] = None
            elif value not in self.written[reference.target] and reference.nullable:
                row[column_name] = None
                self.deferred.append((spec, reference, self.keys[spec.type][entity],
                                      self.target_value(reference, value), entity))
            else:
                row[column_name] = (target_keys[value] if target_keys is not None
                                    else self.target_value(reference, value))
        return row

    def plan(self, spec: AppTable, names: Sequence[str]) -> list[tuple[Any, ...]]:
        """For each name: (name, target column name, kind to convert from or None when the
        stored value is written as it is, the column, the reference or None, the target's
        keys by UUID when the reference points at the key); looked up once per batch."""
        key = (spec.type, tuple(names))
        if key not in self.plans:
            table = self.tables[spec.type]
            plan = []
            for name in names:
                item, reference = spec.field(name), spec.reference(name)
                column = table.c[spec.column_of(name)]
                if reference is None:
                    assert item is not None
                    kind = None if item.kind in AS_STORED else item.kind
                    plan.append((name, column.name, kind, column, None, None))
                else:
                    target = self.mapping.table(reference.target)
                    keys = (self.keys[target.type] if reference.target_column == target.pk
                            else None)
                    plan.append((name, column.name, None, column, reference, keys))
            self.plans[key] = plan
        return self.plans[key]

    def execute(self, spec: AppTable, statement: Any, rows: list[dict[str, Any]],
                entities: list[str]) -> None:
        """Run `statement` for `rows`; on a violation, find the row and name it."""
        if not rows:
            return
        savepoint = self.connection.begin_nested()
        try:
            self.connection.execute(statement, rows)
            savepoint.commit()
            return
        except DBAPIError:
            savepoint.rollback()
        self.name_refused(spec, statement, rows, entities)

    def name_refused(self, spec: AppTable, statement: Any, rows: list[dict[str, Any]],
                     entities: list[str]) -> None:
        """The rows were refused together: run them one by one to name the first refused."""
        for row, entity in zip(rows, entities, strict=True):
            savepoint = self.connection.begin_nested()
            try:
                self.connection.execute(statement, [row])
                savepoint.commit()
            except DBAPIError as error:
                savepoint.rollback()
                raise IntegrityError(f"table {spec.table} row {entity}: {_reason(error)}"
                                     ) from None
        raise IntegrityError(f"table {spec.table}: the rows were refused together, "
                             "though each is accepted alone")

    def insert_rows(self, table: Table, columns: list[str],
                    values: list[Sequence[Any]]) -> None:
        """Rows given as `columns`' values (a sequence per column) by the driver's
        executemany, each value through its column type's bind processing as SQLAlchemy
        would: its per-row parameter handling was a third of a 200,000-row restore."""
        dialect = self.connection.dialect
        marker = _MARKERS.get(dialect.paramstyle)
        if marker is None:
            self.connection.execute(table.insert(), _as_dicts(columns, values))
            return
        bound = list(values)
        for i, name in enumerate(columns):
            process = _bind_processor(table.c[name], dialect)
            if process is not None:
                bound[i] = list(map(process, values[i]))
        rows = list(zip(*bound, strict=True))
        quote = dialect.identifier_preparer.quote
        sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
               f"({', '.join(map(quote, columns))}) VALUES ({', '.join([marker] * len(columns))})")
        for start in range(0, len(rows), 5000):
            self.connection.exec_driver_sql(sql, rows[start:start + 5000])

    def insert(self, spec: AppTable, entities: list[str]) -> None:
        """New rows, built column by column from the state's value tuples (`rows_of`): as
        `row` does, values converted for their column, references as the target's keys (or
        set later)."""
        if not entities:
            return
        table = self.tables[spec.type]
        plan = self.plan(spec, field_names(spec))
        columns = [column_name for _, column_name, *_ in plan]
        values_of = self.rows[spec.type]
        values: list[Sequence[Any]] = list(zip(*map(values_of.__getitem__, entities),
                                               strict=True)) if plan else []
        for i, (_, _, kind, column, reference, target_keys) in enumerate(plan):
            if reference is not None:
                values[i] = self.reference_column(spec, reference, target_keys, entities,
                                                  values[i])
            elif kind is not None:
                write = column_writer(kind, column)
                values[i] = [None if v is None else write(v) for v in values[i]]
        if spec.surrogate:
            columns.append(spec.pk)
            values.append(list(map(self.keys[spec.type].__getitem__, entities)))
        self.written[spec.type].update(entities)
        savepoint = self.connection.begin_nested()
        try:
            self.insert_rows(table, columns, values)
            savepoint.commit()
            return
        except DBAPIError:
            savepoint.rollback()
        self.name_refused(spec, table.insert(), _as_dicts(columns, values), entities)

    def reference_column(self, spec: AppTable, reference: AppReference,
                         target_keys: dict[str, Any] | None, entities: list[str],
                         values: Sequence[Any]) -> Sequence[Any]:
        """A reference's UUIDs (`values`, one per entity) as the target's keys; a reference
        to a row not written yet that may be empty is set later (`deferred`)."""
        done = self.written[reference.target]
        if (target_keys is not None and reference.target != spec.type
                and done.issuperset(filter(_PRESENT, values))):
            found = list(map(target_keys.get, values))  # every target written: in C
            if found.count(None) == values.count(None):
                return found
        if reference.target == spec.type:  # a row earlier in this batch is written before
            done = set(done)
        own, found = self.keys[spec.type], []
        for entity, value in zip(entities, values, strict=True):
            if value is None:
                found.append(None)
            elif value not in done and reference.nullable:
                found.append(None)
                self.deferred.append((spec, reference, own[entity],
                                      self.target_value(reference, value), entity))
            else:
                found.append(target_keys[value] if target_keys is not None
                             else self.target_value(reference, value))
            if reference.target == spec.type:
                done.add(entity)
        return found

    def update(self, spec: AppTable, changes: dict[str, list[str]]) -> None:
        """Matched rows: only the fields that differ, grouped by the set of fields."""
        table = self.tables[spec.type]
        for names_key, entities in changes.items():
            names = names_key.split(",")
            rows = []
            for entity in entities:
                row = {f"v_{c}": v for c, v in self.row(spec, entity, names).items()}
                row["k_pk"] = self.keys[spec.type][entity]
                rows.append(row)
            columns = {spec.column_of(n): bindparam(f"v_{spec.column_of(n)}") for n in names}
            statement = (table.update().where(table.c[spec.pk] == bindparam("k_pk"))
                         .values(columns))
            self.execute(spec, statement, rows, entities)

    def set_deferred(self) -> None:
        for spec, reference, key, value, entity in self.deferred:
            table = self.tables[spec.type]
            statement = (table.update().where(table.c[spec.pk] == bindparam("k_pk"))
                         .values({reference.column: bindparam("v_ref")}))
            self.execute(spec, statement, [{"k_pk": key, "v_ref": value}], [entity])

    def move_sequences(self) -> None:
        """PostgreSQL hands out keys from a sequence that explicit keys do not advance. SQLite
        (AUTOINCREMENT's sqlite_sequence) and MariaDB move past explicit keys themselves."""
        if self.connection.dialect.name != "postgresql":
            return
        for spec in self.mapping.tables:
            if spec.surrogate and self.keys[spec.type]:
                table = self.tables[spec.type]
                sequence = self.connection.execute(
                    select(func.pg_get_serial_sequence(table.name, spec.pk))).scalar()
                if sequence is not None:
                    highest = self.connection.execute(
                        select(func.max(table.c[spec.pk]))).scalar()
                    self.connection.execute(select(func.setval(sequence, highest)))


_ISO_PROBES = (datetime(2001, 2, 3, 4, 5, 6), datetime(987, 6, 5, 4, 3, 2, 1))


def _bind_processor(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processing; for a column without a zone (given naive
    datetimes, `column_writer`) datetime.isoformat where that is what it does (SQLite's
    DATETIME, by a %-format of each field: it was an eighth of a restore)."""
    process = column.type._cached_bind_processor(dialect)
    if (process is None or not isinstance(column.type, DateTime)
            or getattr(column.type, "timezone", False)):
        return process
    if all(process(probe) == probe.isoformat(" ", "microseconds") for probe in _ISO_PROBES):
        return _isoformat
    return process


def _isoformat(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(" ", "microseconds")


_PRESENT = partial(is_not, None)


def _as_dicts(columns: list[str], values: list[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as SQLAlchemy's parameter dicts, from a sequence of values per column."""
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _reason(error: DBAPIError) -> str:
    text = str(error.orig).strip().splitlines()
    return text[0] if text else type(error.orig).__name__


def _extras_line(spec: AppTable, entities: list[str], found: State,
                 keys: dict[Any, str]) -> str:
    """The table and the extra rows' natural keys, or primary keys for a table without one
    (their UUIDs are this restore's own)."""
    primary = {entity: key for key, entity in keys.items()}
    shown = []
    for entity in entities[:_SHOWN]:
        values = found[spec.type][entity]
        shown.append(", ".join(f"{n}={values[n]!r}" for n in spec.natural_key)
                     or f"{spec.pk}={primary[entity]!r}")
    more = f" and {len(entities) - _SHOWN} more" if len(entities) > _SHOWN else ""
    return f"{spec.table} ({'; '.join(shown)}{more})"


def _extras(keys: dict[Any, str], wanted: Mapping[str, Any]) -> list[str]:
    """The target's rows (primary key -> UUID) the backup does not have, in key order."""
    return [entity for key, entity in sorted(keys.items(),
                                             key=lambda item: (type(item[0]).__name__, item[0]))
            if entity not in wanted]


def restore(engine: Engine, mapping: AppMapping, state: StateView, *, keep_extra: bool = False,
            dry_run: bool = False) -> RestoreReport:
    """Restore `state` into the application database at `engine`; see the module's doc.
    Returns what was done and the new identity map: (table, target key) -> UUID for the rows
    without a natural key, so that the next capture of the target records nothing."""
    rows = rows_of(state, mapping)
    check_references(state, mapping, rows)
    report = RestoreReport(dry_run=dry_run,
                           identity=IdentityMap(successors=successors(state, mapping)))
    with writing(engine) as connection:
        tables = app_tables(connection, mapping)
        for spec in mapping.tables:
            if any(isinstance(tables[spec.type].c[f.column].type, JSON)
                   for f in spec.fields if f.kind == "json"):
                for item in spec.fields:  # None is SQL NULL; the JSON null is JSON.NULL
                    if isinstance(tables[spec.type].c[item.column].type, JSON):
                        tables[spec.type].c[item.column].type.none_as_null = True
        seen = report.identity.copy()  # a row without a natural key: a UUID for this restore
        before, target_keys = read_state(connection, mapping, seen, tables)
        extras = {spec.type: _extras(target_keys[spec.type], state.get(spec.type, {}))
                  for spec in mapping.tables}
        refused = [_extras_line(spec, extras[spec.type], before, target_keys[spec.type])
                   for spec in mapping.tables if extras[spec.type]]
        if refused and not keep_extra:
            raise ValidationError("the target has rows the backup does not: "
                                  f"{'; '.join(refused)}; restore into a database the "
                                  "application only initialised, or pass keep_extra "
                                  "(--keep-extra) to keep them")
        writer = _Writer(connection, mapping, state, tables, rows)
        plan: dict[str, tuple[list[str], dict[str, list[str]]]] = {}
        for spec in mapping.tables:
            wanted = state.get(spec.type, {})
            writer.keys[spec.type] = {e: k for k, e in target_keys[spec.type].items()
                                      if e in wanted}
            new = sorted(set(wanted) - set(before[spec.type]))
            writer.allocate(spec, new, set(target_keys[spec.type]))
            changes: dict[str, list[str]] = {}
            for entity in sorted(set(wanted) & set(before[spec.type])):
                differ = [n for n, v in wanted[entity].items()
                          if before[spec.type][entity].get(n) != v and n != spec.key_field]
                if differ:
                    changes.setdefault(",".join(differ), []).append(entity)
            plan[spec.type] = (new, changes)
            report.inserted[spec.type] = len(new)
            report.updated[spec.type] = sum(len(e) for e in changes.values())
            report.unchanged[spec.type] = (len(wanted) - len(new) - report.updated[spec.type])
            report.kept_extra[spec.type] = len(extras[spec.type])
        for spec in mapping.tables:
            new, changes = plan[spec.type]
            inserting = set(new)
            writer.written[spec.type].update(e for e in writer.keys[spec.type]
                                  if e not in inserting)
            writer.insert(spec, new)
            writer.update(spec, changes)
        writer.set_deferred()
        writer.move_sequences()
        for spec in mapping.tables:
            if not spec.natural_key:
                for entity, key in writer.keys[spec.type].items():
                    report.identity.bind(spec.table, key, entity)
        # The verification reads the extras under the UUIDs they got above (they keep
        # their keys), so they are told apart from the restored rows and left out of it
        checking = report.identity.copy()
        for spec in mapping.tables:
            if not spec.natural_key and extras[spec.type]:
                kept = set(extras[spec.type])
                for key, entity in target_keys[spec.type].items():
                    if entity in kept:
                        checking.bind(spec.table, key, entity)
        _verify(connection, mapping, writer.rows, tables, report, extras, checking)
        if dry_run:
            connection.rollback()
        else:
            try:
                connection.commit()
            except DBAPIError as error:
                raise IntegrityError(f"the target refused the restore at commit: "
                                     f"{_reason(error)}") from None
    return report


def _verify(connection: Connection, mapping: AppMapping,
            expected: dict[str, dict[str, tuple[Any, ...]]], tables: dict[str, Table],
            report: RestoreReport, extras: dict[str, list[str]], identity: IdentityMap
            ) -> None:
    """Read the target back and compare it with the state's rows (`expected`, `rows_of`;
    their decimals are replaced by what the target gives back): counts, then every row's values
    (fields and references, not the key field: keys differ by design) as tuples, compared
    in C; only when they differ are the rows built as dicts, to name the first difference."""
    found, _ = read_rows(connection, mapping, identity, tables)
    for spec in mapping.tables:
        for entity in extras[spec.type]:
            found[spec.type].pop(entity, None)
        # Only decimals may come back otherwise (columns.expected_in)
        names = field_names(spec)
        decimals = [(names.index(f.name), tables[spec.type].c[f.column], f.scale)
                    for f in spec.fields if f.kind == "decimal"]
        if decimals:
            rows = expected[spec.type]
            for entity, values in rows.items():
                patched = list(values)
                for i, column, scale in decimals:
                    patched[i] = expected_in("decimal", values[i], column, scale)
                rows[entity] = tuple(patched)
    report.counts = {spec.type: len(found[spec.type]) for spec in mapping.tables}
    for spec in mapping.tables:
        if report.counts[spec.type] != len(expected[spec.type]):
            raise IntegrityError(f"table {spec.table}: {report.counts[spec.type]} rows after the "
                                 f"restore, the backup has {len(expected[spec.type])}; "
                                 "nothing was restored")
    differing = [t for t in mapping.tables if found[t.type] != expected[t.type]]
    report.digest = rows_digest(found, mapping)
    if differing:
        difference = first_difference(*(
            {t.type: {e: dict(zip(field_names(t), values, strict=True))
                      for e, values in side[t.type].items()} for t in differing}
            for side in (expected, found)))
        raise IntegrityError(f"table {difference}; nothing was restored" if difference else
                             "the target's digest differs from the backup's; nothing was "
                             "restored")
