"""Generic entity commands for any declared type: add, update, delete, show.

The schema says the fields, kinds, references, natural key and who may write (`writers`);
nothing here knows a type by name. Each write checks the values (schemadoc/values.py), the
references (they must exist now), the natural key (unique), the actor's role (the type's
writers, and for the story's own types the story's rules too, permissions.py), then records
one event and changes the projection row in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, select

from eventvault import permissions
from eventvault.catalog import Catalog
from eventvault.errors import (
    EntityAbsentError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from eventvault.events import CREATED, DELETED, UPDATED, FieldValue
from eventvault.schemadoc import TypeSpec, parse_assignments
from eventvault.store import Appender, NewEvent
from eventvault.tables import projection_for

# Types whose writes carry rules beyond `writers` (the last admin, an author's own
# documents...): their own commands, which go through domain.py, write them.
STORY_COMMANDS = {"user": "eventvault user add/update/delete"}


class Entities:
    """The generic commands inside one write transaction."""

    def __init__(self, connection: Connection, appender: Appender | None, catalog: Catalog,
                 actor_id: str, username: str, role: str, reason: str | None) -> None:
        self.connection, self.appender, self.catalog = connection, appender, catalog
        self.tables: dict[str, Table] = projection_for(catalog)
        self.actor_id, self.username, self.role, self.reason = actor_id, username, role, reason

    # --- look-ups --------------------------------------------------------------------------

    def spec(self, type_name: str) -> TypeSpec:
        found = self.catalog.schema.type(type_name)
        if found is None:
            raise UsageError(f"unknown entity type {type_name!r}; known types: "
                             f"{', '.join(self.catalog.type_names)}")
        return found

    def find(self, ref: str, type_name: str | None = None) -> tuple[TypeSpec, dict[str, Any]]:
        """The live entity a REF names: a UUID, TYPE:KEY (a one-field natural key), or with
        a type known, the bare KEY."""
        kind, colon, key = ref.partition(":")
        if colon and self.catalog.schema.type(kind) is not None:
            type_name = kind
        else:
            key = ref
        candidates = [type_name] if type_name else list(self.catalog.type_names)
        for name in candidates:
            spec, table = self.spec(name), self.tables[name]
            row = self.connection.execute(select(table).where(table.c.uuid == key)).first()
            if row is None and len(spec.natural_key) == 1 and (colon or type_name):
                column = _column(spec, spec.natural_key[0])
                if spec.field(spec.natural_key[0]) is not None:
                    row = self.connection.execute(
                        select(table).where(table.c[column] == key)).first()
            if row is not None:
                return spec, dict(row._mapping)
        raise EntityAbsentError(f"no live {type_name or 'entity'} {ref!r}")

    def values(self, spec: TypeSpec, row: dict[str, Any]) -> dict[str, FieldValue]:
        """An entity's fields, references as their targets' UUIDs."""
        found: dict[str, FieldValue] = {f.name: row[f.name] for f in spec.fields}
        for field in spec.fields:
            if field.kind == "bool" and found[field.name] is not None:
                found[field.name] = bool(found[field.name])
        for reference in spec.references:
            target_id = row[reference.column]
            target = self.tables[reference.target]
            found[reference.name] = None if target_id is None else self.connection.execute(
                select(target.c.uuid).where(target.c.id == target_id)).scalar_one()
        return found

    # --- writes ----------------------------------------------------------------------------

    def add(self, type_name: str, assignments: Iterable[str]) -> str:
        spec = self._writable(type_name, CREATED)
        return self.create(type_name, parse_assignments(spec, assignments))

    def create(self, type_name: str, given: dict[str, Any], entity_id: str | None = None
               ) -> str:
        """Create from stored values (references as REFs); `entity_id`: a UUID the caller
        chose (app capture names rows by natural key), else a new one."""
        spec = self._writable(type_name, CREATED)
        values: dict[str, Any] = {f.name: f.default for f in spec.fields}
        values.update({r.name: None for r in spec.references})
        values.update(given)
        missing = [f.name for f in spec.fields if f.required and values[f.name] is None]
        missing += [r.name for r in spec.references if r.required and values[r.name] is None]
        if missing:
            raise ValidationError(f"a {type_name} needs {', '.join(missing)} "
                                  f"(--set {missing[0]}=...)")
        payload, columns = self._resolve(spec, values)
        self._require_unique(spec, columns, None)
        entity_id = entity_id or str(uuid.uuid4())
        self._authorize(spec, CREATED, payload)
        self._append(spec, entity_id, 1, CREATED, payload)
        self.connection.execute(self.tables[type_name].insert().values(
            uuid=entity_id, version=1, **columns))
        return entity_id

    def update(self, ref: str, assignments: Iterable[str]) -> str:
        spec, _ = self.find(ref)
        self._writable(spec.name, UPDATED)
        return self.change(ref, parse_assignments(spec, assignments))

    def change(self, ref: str, given: dict[str, Any]) -> str:
        """Update from stored values (references as REFs); only real changes are recorded."""
        spec, row = self.find(ref)
        self._writable(spec.name, UPDATED)
        current = self.values(spec, row)
        if not given:
            raise UsageError("nothing to change: give at least one --set FIELD=VALUE")
        for name, value in given.items():
            field = spec.field(name)
            if value is None and (field or spec.reference(name)).required:  # type: ignore[union-attr]
                raise ValidationError(f"{spec.name} field {name!r} cannot be empty")
        payload, columns = self._resolve(spec, given)
        changed = {name: value for name, value in payload.items() if current[name] != value}
        if not changed:
            return str(row["uuid"])
        columns = {column: value for column, value in columns.items()
                   if _field_of(spec, column) in changed}
        self._require_unique(spec, {**self._columns_of(spec, row), **columns}, row["id"])
        self._authorize(spec, UPDATED, changed, current)
        self._append(spec, row["uuid"], row["version"] + 1, UPDATED, changed)
        table = self.tables[spec.name]
        self.connection.execute(table.update().where(table.c.id == row["id"]).values(
            version=row["version"] + 1, **columns))
        return str(row["uuid"])

    def delete(self, ref: str) -> str:
        spec, row = self.find(ref)
        self._writable(spec.name, DELETED)
        for source, reference in self.catalog.schema.referrers(spec.name):
            table = self.tables[source.name]
            used = self.connection.execute(select(table.c.uuid).where(
                table.c[reference.column] == row["id"]).limit(1)).first()
            if used is not None:
                raise ValidationError(f"{spec.name} {row['uuid']} is still referenced by "
                                      f"{source.name} {used[0]} ({reference.name}); delete "
                                      "or change that first")
        self._authorize(spec, DELETED, {}, self.values(spec, row))
        self._append(spec, row["uuid"], row["version"] + 1, DELETED, {})
        table = self.tables[spec.name]
        self.connection.execute(table.delete().where(table.c.id == row["id"]))
        return str(row["uuid"])

    # --- helpers ---------------------------------------------------------------------------

    def _writable(self, type_name: str, event_type: str) -> TypeSpec:
        spec = self.spec(type_name)
        if type_name in STORY_COMMANDS:
            raise UsageError(f"{type_name} entities are written with `{STORY_COMMANDS[type_name]}`"
                             " (their rules: roles, the last admin)")
        return spec

    def _authorize(self, spec: TypeSpec, event_type: str, payload: dict[str, Any],
                   owners: dict[str, Any] | None = None) -> None:
        """The type's writers; for the story's types its rules too (one choke point)."""
        if self.role not in spec.writers:
            raise PermissionDeniedError(
                f"{self.username} (role {self.role}) may not write {spec.name} entities "
                f"(writers: {', '.join(spec.writers)}); ask an admin")
        if spec.name in permissions.STORY_TYPES:
            permissions.authorize(self.username, self.role, self.actor_id, spec.name,
                                  event_type, payload, payload if owners is None else owners)

    def _resolve(self, spec: TypeSpec, values: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload with references as UUIDs, table columns with references as row IDs)."""
        payload: dict[str, Any] = {}
        columns: dict[str, Any] = {}
        for name, value in values.items():
            reference = spec.reference(name)
            if reference is None:
                payload[name] = columns[name] = value
            elif value is None:
                payload[name] = columns[reference.column] = None
            else:
                target, row = self.find(str(value), reference.target)
                if target.name != reference.target:
                    raise ValidationError(f"{spec.name} {name} must name a {reference.target}, "
                                          f"not a {target.name} ({value})")
                payload[name], columns[reference.column] = row["uuid"], row["id"]
        return payload, columns

    def _columns_of(self, spec: TypeSpec, row: dict[str, Any]) -> dict[str, Any]:
        return {_column(spec, name): row[_column(spec, name)] for name in spec.field_names}

    def _require_unique(self, spec: TypeSpec, columns: dict[str, Any],
                        row_id: int | None) -> None:
        if not spec.natural_key:
            return
        table = self.tables[spec.name]
        query = select(table.c.uuid)
        for name in spec.natural_key:
            query = query.where(table.c[_column(spec, name)] == columns.get(_column(spec, name)))
        if row_id is not None:
            query = query.where(table.c.id != row_id)
        found = self.connection.execute(query.limit(1)).first()
        if found is not None:
            raise ValidationError(f"a {spec.name} with that {', '.join(spec.natural_key)} "
                                  f"exists already ({found[0]})")

    def _append(self, spec: TypeSpec, entity_id: str, version: int, event_type: str,
                payload: dict[str, Any]) -> None:
        assert self.appender is not None, "a read-only Entities writes nothing"
        self.appender.append(NewEvent(spec.name, entity_id, version, event_type,
                                      self.actor_id, payload, self.reason))


def _column(spec: TypeSpec, name: str) -> str:
    reference = spec.reference(name)
    return reference.column if reference is not None else name


def _field_of(spec: TypeSpec, column: str) -> str:
    for reference in spec.references:
        if reference.column == column:
            return reference.name
    return column
