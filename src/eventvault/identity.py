"""The identity map of one write transaction: UUID -> row, natural key -> UUID, ID -> UUID.

The transaction holds the write lock, so nothing else can change the rows it has read; a
batch of commands touching the same users and states reads each of them once. Rows come
from, and go to, the projection through a `RowWriter`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table

from eventvault.catalog import Catalog
from eventvault.projection import RowWriter


class IdentityMap:
    """`catalog`: the vault's current schema, whose one-field natural keys it indexes."""

    def __init__(self, connection: Connection, catalog: Catalog,
                 tables: dict[str, Table]) -> None:
        self.rows = RowWriter(connection, tables)
        self._keys: dict[str, str] = {t.name: t.natural_key[0] for t in catalog.schema.types
                                      if len(t.natural_key) == 1}
        self._by_uuid: dict[str, tuple[str, dict[str, Any]]] = {}
        self._by_key: dict[tuple[str, str], str] = {}
        self._by_id: dict[tuple[str, int], str] = {}

    def get(self, type_name: str, value: object, column: str) -> dict[str, Any] | None:
        """The row of `type_name` whose `column` is `value`, from memory or the table."""
        if column == "uuid":
            found = self._by_uuid.get(str(value))
            if found is not None:
                return found[1] if found[0] == type_name else None
        row = self.rows.select(type_name, column, value)
        if row is not None:
            self.remember(type_name, row)
        return row

    def known(self, type_name: str, entity_id: str) -> dict[str, Any] | None:
        """The row of `type_name` under exactly this UUID if this map holds it; no query."""
        found = self._by_uuid.get(entity_id)
        return found[1] if found is not None and found[0] == type_name else None

    def uuid_for_key(self, type_name: str, key: str) -> str | None:
        """The UUID of the entity with this natural key, if this map has seen it."""
        return self._by_key.get((type_name, key))

    def uuid_of(self, type_name: str, row_id: int | None) -> str | None:
        if row_id is None:
            return None
        entity_id = self._by_id.get((type_name, row_id))
        if entity_id is None:
            row = self.get(type_name, row_id, "id")
            entity_id = None if row is None else row["uuid"]
        return entity_id

    def remember(self, type_name: str, row: dict[str, Any]) -> None:
        self._by_uuid[row["uuid"]] = (type_name, row)
        self._by_id[(type_name, row["id"])] = row["uuid"]
        key = self._keys.get(type_name)
        if key is not None:
            self._by_key[(type_name, str(row[key]))] = row["uuid"]

    def change(self, type_name: str, row: dict[str, Any], columns: dict[str, Any]) -> None:
        """Apply `columns` to a row this map holds: its UUID and ID stay, so only a changed
        natural key moves (what `forget` then `remember` did, in fewer steps per command)."""
        key = self._keys.get(type_name)
        if key is not None and key in columns:
            self._by_key.pop((type_name, str(row[key])), None)
            self._by_key[(type_name, str(columns[key]))] = row["uuid"]
        row.update(columns)

    def forget(self, type_name: str, row: dict[str, Any]) -> None:
        self._by_uuid.pop(row["uuid"], None)
        self._by_id.pop((type_name, row["id"]), None)
        key = self._keys.get(type_name)
        if key is not None:
            self._by_key.pop((type_name, str(row[key])), None)
