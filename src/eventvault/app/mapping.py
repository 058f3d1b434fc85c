"""How an application's tables correspond to a vault's entity types, column by column.

`app attach` derives it (reflect.py) and the vault keeps it beside the schema (`to_dict`,
`from_dict`: plain JSON-able data); capture and restore read and write the application's
tables through it. Names on the vault's side are schemadoc identifiers; the application's own
table and column names are kept exactly as the database spells them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AppField:
    """A plain column: field `name` of kind `kind` holds column `column`."""

    name: str
    column: str
    kind: str
    nullable: bool
    scale: int | None = None  # a decimal column's declared scale when attached (columns.py)


@dataclass(frozen=True, slots=True)
class AppReference:
    """A foreign key: reference `name` (column `column`) points at `target_column` of the
    table of type `target` (usually its primary key)."""

    name: str
    column: str
    target: str
    target_column: str
    nullable: bool


@dataclass(frozen=True, slots=True)
class AppTable:
    """One entity type. `surrogate`: the primary key is an integer the application assigns,
    replaced by a UUID in the vault; otherwise the primary key column is an ordinary field
    (and the natural key). `key_field`: for a surrogate table without a natural key, the vault
    field holding the row's primary key in the application (identity.py: what names the row
    across captures, kept in the log so that a replayed vault still knows it)."""

    type: str
    table: str
    pk: str
    surrogate: bool
    fields: tuple[AppField, ...]
    references: tuple[AppReference, ...]
    natural_key: tuple[str, ...] = ()  # field and reference names
    key_field: str | None = None

    def field(self, name: str) -> AppField | None:
        return next((f for f in self.fields if f.name == name), None)

    def reference(self, name: str) -> AppReference | None:
        return next((r for r in self.references if r.name == name), None)

    def column_of(self, name: str) -> str:
        item = self.field(name) or self.reference(name)
        if item is None:
            raise KeyError(name)
        return item.column


@dataclass(frozen=True, slots=True)
class AppMapping:
    """Every table taken, in dependency order (schemadoc's order of the derived schema)."""

    tables: tuple[AppTable, ...]
    decisions: tuple[dict[str, Any], ...] = field(default=())

    def table(self, type_name: str) -> AppTable:
        found = next((t for t in self.tables if t.type == type_name), None)
        if found is None:
            raise KeyError(type_name)
        return found

    def to_dict(self) -> dict[str, Any]:
        # Through JSON: reflected names are SQLAlchemy's quoted_name, a str subclass that
        # the vault's json kind refuses.
        return json.loads(json.dumps(self._plain()))  # type: ignore[no-any-return]

    def _plain(self) -> dict[str, Any]:
        return {"tables": [
            {"type": t.type, "table": t.table, "pk": t.pk, "surrogate": t.surrogate,
             "natural_key": list(t.natural_key), "key_field": t.key_field,
             "fields": [[f.name, f.column, f.kind, f.nullable, f.scale] for f in t.fields],
             "references": [[r.name, r.column, r.target, r.target_column, r.nullable]
                            for r in t.references]}
            for t in self.tables], "decisions": list(self.decisions)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppMapping:
        return cls(tuple(
            AppTable(t["type"], t["table"], t["pk"], t["surrogate"],
                     tuple(AppField(*f) for f in t["fields"]),
                     tuple(AppReference(*r) for r in t["references"]),
                     tuple(t["natural_key"]), t.get("key_field"))
            for t in data["tables"]), tuple(data.get("decisions", ())))
