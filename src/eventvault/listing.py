"""`eventvault list`: the live entities of one type, with UUID, name and version.

An entity's name is its natural key (users, states, placeholders, configs) or its title
(documents); references are shown by the name of what they point at, looked up in one
query per referenced type. The order is fixed: by name, then UUID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, select

from eventvault import vault_schema
from eventvault.errors import UsageError
from eventvault.schemadoc import Schema, TypeSpec, kinds
from eventvault.tables import projection_for
from eventvault.vault import Vault

DEFAULT_LIMIT = 100


@dataclass
class Listing:
    type_name: str
    entities: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False  # more entities matched than the limit let through

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type_name, "count": len(self.entities), "more": self.more,
                "entities": self.entities}


def name_field(entity: TypeSpec) -> str | None:
    """The field that names an entity of this type for people, if it has one."""
    if len(entity.natural_key) == 1 and entity.field(entity.natural_key[0]) is not None:
        return entity.natural_key[0]
    return "title" if entity.field("title") is not None else None


def _spec(schema: Schema, type_name: str) -> TypeSpec:
    found = schema.type(type_name)
    if found is None:
        raise UsageError(f"unknown entity type {type_name!r}; known types: "
                         f"{', '.join(schema.type_names)}")
    return found


def list_entities(vault: Vault, type_name: str, where: Mapping[str, str] | None = None,
                  limit: int = DEFAULT_LIMIT) -> Listing:
    """Live entities of `type_name` whose fields equal `where`'s (FIELD -> text; a
    reference by UUID or name); at most `limit` of them, 0 for all."""
    with vault.reading() as connection:
        catalog = vault_schema.history(connection).catalog  # the vault's own types
        entity = _spec(catalog.schema, type_name)
        tables = projection_for(catalog)
        table = tables[type_name]
        query = select(table)
        for name, text in (where or {}).items():
            query = query.where(_condition(connection, catalog.schema, tables, entity, table,
                                           name, text))
        label = name_field(entity)
        order = [table.c[label], table.c.uuid] if label else [table.c.uuid]
        query = query.order_by(*order)
        if limit:
            query = query.limit(limit + 1)
        rows = [dict(row) for row in connection.execute(query).mappings()]
        listing = Listing(type_name, more=bool(limit) and len(rows) > limit)
        rows = rows[:limit] if limit else rows
        names = {reference.name: _names(connection, catalog.schema, tables, reference.target,
                                        {row[reference.column] for row in rows})
                 for reference in entity.references}
    for row in rows:
        fields: dict[str, Any] = {f.name: row[f.name] for f in entity.fields}
        for reference in entity.references:
            fields[reference.name] = names[reference.name].get(row[reference.column])
        listing.entities.append({"uuid": row["uuid"], "version": row["version"],
                                 "name": row[label] if label else None, "fields": fields})
    return listing


def _condition(connection: Connection, schema: Schema, tables: Mapping[str, Table],
               entity: TypeSpec, table: Table, name: str, text: str) -> Any:
    plain = entity.field(name)
    if plain is not None:
        return table.c[name] == _typed(entity, name, plain.kind, text)
    reference = entity.reference(name)
    if reference is None:
        raise UsageError(f"{entity.name} has no field {name!r}; fields: "
                         f"{', '.join(entity.field_names)}")
    column = table.c[reference.column]
    if text.strip().lower() in ("", "none", "null"):
        return column.is_(None)
    target = tables[reference.target]
    label = name_field(_spec(schema, reference.target))
    matches = target.c.uuid == text
    if label is not None:
        matches = matches | (target.c[label] == text)
    found = connection.execute(select(target.c.id).where(matches)).scalars().all()
    if not found:
        raise UsageError(f"no {reference.target} {text!r} (for --where {name}=...)")
    return column.in_(found)


def _typed(entity: TypeSpec, name: str, kind: str, text: str) -> Any:
    field = entity.field(name)
    choices = field.choices if field is not None else ()
    if choices and text not in choices:
        raise UsageError(f"{entity.name} {name} must be one of {', '.join(choices)}, "
                         f"not {text!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{name} must be a whole number, not {text!r}") from None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered not in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            raise UsageError(f"{name} must be true or false, not {text!r}")
        return lowered in ("true", "yes", "1", "on")
    if kind != "str":  # the declared kinds: compared in their stored form
        try:
            return kinds.parse(kind, text)
        except kinds.KindError as error:
            raise UsageError(f"{name} ({kind}): {error}") from None
    return text


def _names(connection: Connection, schema: Schema, tables: Mapping[str, Table],
           type_name: str, ids: set[int | None]) -> dict[int | None, dict[str, Any] | None]:
    """Row ID -> {"uuid", "name"} of the referenced entities (None stays None)."""
    wanted = [i for i in ids if i is not None]
    found: dict[int | None, dict[str, Any] | None] = {None: None}
    if not wanted:
        return found
    target = tables[type_name]
    label = name_field(_spec(schema, type_name))
    columns = [target.c.id, target.c.uuid] + ([target.c[label]] if label else [])
    for start in range(0, len(wanted), 500):  # bound the IN list
        for row in connection.execute(select(*columns).where(
                target.c.id.in_(wanted[start:start + 500]))):
            found[row[0]] = {"uuid": row[1], "name": row[2] if label else None}
    return found
