"""Re-attaching after the application migrated: the reflected schema made an evolution that
schemadoc accepts (docs/SCHEMA.md, "Evolution"), or refused with its reasons.

An application's migration may do what a vault's schema may not: add a NOT NULL column, drop
one, tighten NULL to NOT NULL, add a unique constraint. The vault keeps its log valid:
- a column added to an existing table is an optional field (entities captured before it have
  no value until the next capture gives them the application's);
- a dropped column stays in the schema as an optional field (the log keeps its values; later
  captures no longer set it);
- a column that became NOT NULL stays optional in the vault;
- the natural key stays the one attached first (it names the entities: another key would
  rename them all);
- a dropped table is a removed type, which the caller allows only without live entities;
- a changed kind or a reference retargeted is refused, as schemadoc refuses it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eventvault.app.mapping import AppMapping, AppTable
from eventvault.app.reflect import key_field_of
from eventvault.schemadoc import Change, Schema, evolve, from_document, to_plain


def reattach(previous: Schema, schema: Schema, mapping: AppMapping
             ) -> tuple[Schema, AppMapping, Change]:
    """The schema to apply after `previous` (version + 1), the mapping that goes with it, and
    the change. `schema` and `mapping` come from `reflect` of the migrated application.
    Raises SchemaError (every reason) if no evolution can carry the vault there."""
    types = []
    natural_keys: dict[str, tuple[str, ...]] = {}
    for spec in schema.types:
        old = previous.type(spec.name)
        if spec.name == "user" or old is None:
            types.append(old if spec.name == "user" and old is not None else spec)
            continue
        fields = [item if (was := old.field(item.name)) is not None and was.required
                  else replace(item, required=False) for item in spec.fields]
        fields += [replace(item, required=False) for item in old.fields
                   if spec.field(item.name) is None and spec.reference(item.name) is None]
        references = [item if (was := old.reference(item.name)) is not None and was.required
                      else replace(item, required=False) for item in spec.references]
        references += [replace(item, required=False) for item in old.references
                       if spec.reference(item.name) is None and spec.field(item.name) is None
                       and schema.type(item.target) is not None]
        natural_keys[spec.name] = old.natural_key
        types.append(replace(spec, fields=_in_order(fields, old.fields),
                             references=_in_order(references, old.references),
                             natural_key=old.natural_key))
    document = to_plain(Schema(previous.name, previous.version + 1, tuple(types)))
    new = from_document(document, "application", stored=True)
    change = evolve(previous, new)
    tables = tuple(_keyed(t, natural_keys.get(t.type, t.natural_key)) for t in mapping.tables)
    return new, AppMapping(tables, mapping.decisions), change


def _in_order(items: list[Any], previous: tuple[Any, ...]) -> tuple[Any, ...]:
    """`items` in the order the vault has them, new ones last: an engine may list the same
    columns in another order (SQLite rebuilds a table Django alters, moving the column to
    the end), which is no change to the application."""
    position = {item.name: i for i, item in enumerate(previous)}
    return tuple(sorted(items, key=lambda item: position.get(item.name, len(position))))


def settled(mapping: AppMapping, previous: AppMapping) -> AppMapping:
    """`mapping` (a re-attach's) with what the first attachment decided kept: the order of
    fields and references, and a decimal's scale (it decides the digits every capture
    stores, columns.normal_decimal; another engine's reflection may declare none)."""
    tables = []
    for spec in mapping.tables:
        try:
            was = previous.table(spec.type)
        except KeyError:
            tables.append(spec)
            continue
        scales = {f.name: f.scale for f in was.fields}
        fields = [replace(f, scale=scales.get(f.name, f.scale)) for f in spec.fields]
        tables.append(replace(spec, fields=_in_order(fields, was.fields),
                              references=_in_order(list(spec.references), was.references)))
    return AppMapping(tuple(tables), mapping.decisions)


def _keyed(spec: AppTable, natural_key: tuple[str, ...]) -> AppTable:
    return replace(spec, natural_key=natural_key,
                   key_field=key_field_of(spec.surrogate, natural_key))
