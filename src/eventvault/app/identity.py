"""Which UUID names each application row.

A row with a natural key is named by `uuid5(NAMESPACE, type and key values)`: the `admin` of
a reinitialised application is the same entity as before, whatever its new primary key. A row
without one gets a random UUID at its first capture, remembered as (table, primary key) ->
UUID in an `IdentityMap`, which the caller persists (`entries`, and the constructor) and which
`app restore` rebinds to the target's new keys. A UUID is never derived from an integer key:
keys change across a reinit, and that was the seed's bug. A row that comes back after
its entity was deleted is that entity's `successor`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence

import msgpack

from eventvault.schemadoc.kinds import Stored

# Fixed forever: changing it would rename every natural-key entity of every vault.
NAMESPACE = uuid.UUID("5f0c2a4e-3b8d-5e8a-9b61-0e7a1c4d2f90")
Key = int | str  # an application's primary key value, as stored


def natural_uuid(type_name: str, key: Sequence[Stored]) -> str:
    """The UUID of the entity of `type_name` whose natural key values (stored form, references
    as UUIDs) are `key`. The name hashed is the msgpack of [type, values], as hex."""
    name = msgpack.packb([type_name, list(key)], use_bin_type=True).hex()
    return str(uuid.uuid5(NAMESPACE, name))


def successor(entity: str) -> str:
    """The UUID of a row whose entity `entity` the vault holds deleted, when the row exists
    again (a restore at an earlier point brought it back; the application created its
    natural key again): the log never creates a deleted UUID again (fold.py), so the row is
    a new entity, named after the one it follows so that each vault derives the same and an
    audit can link them. Deleted again, its successor is `successor(successor(entity))`."""
    return str(uuid.uuid5(NAMESPACE, f"successor {entity}"))


class IdentityMap:
    """(application table, primary key) -> UUID for rows without a natural key."""

    def __init__(self, entries: Iterable[tuple[str, Key, str]] = (),
                 successors: dict[str, str] | None = None) -> None:
        self._uuids: dict[tuple[str, Key], str] = {(t, k): u for t, k, u in entries}
        # natural UUID -> the successor that names that row now (`successor`)
        self.successors: dict[str, str] = dict(successors or {})

    def named(self, natural: str) -> str:
        """The UUID of the row whose natural UUID is `natural`: it, or its successor."""
        return self.successors.get(natural, natural)

    def get(self, table: str, key: Key) -> str | None:
        return self._uuids.get((table, key))

    def assign(self, table: str, key: Key) -> str:
        """The row's UUID: the remembered one, or a new random one, remembered."""
        found = self._uuids.get((table, key))
        if found is None:
            found = self._uuids[(table, key)] = str(uuid.uuid4())
        return found

    def bind(self, table: str, key: Key, entity: str) -> None:
        self._uuids[(table, key)] = entity

    def retain(self, table: str, keys: set[Key]) -> None:
        """Forget the rows of `table` that are gone, so that a key the application reuses
        later (SQLite reuses the highest rowid) names a new entity, not the deleted one."""
        for stale in [k for t, k in self._uuids if t == table and k not in keys]:
            del self._uuids[(table, stale)]

    def entries(self) -> list[tuple[str, Key, str]]:
        """Every entry, sorted: what the vault persists."""
        return sorted(((t, k, u) for (t, k), u in self._uuids.items()),
                      key=lambda e: (e[0], str(type(e[1])), e[1]))

    def items(self) -> Iterator[tuple[str, Key, str]]:
        """Every entry, unordered."""
        return ((t, k, u) for (t, k), u in self._uuids.items())

    def copy(self) -> IdentityMap:
        found = IdentityMap(successors=self.successors)
        found._uuids = dict(self._uuids)
        return found

    def __len__(self) -> int:
        return len(self._uuids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdentityMap) and self._uuids == other._uuids and \
            self.successors == other.successors

    __hash__ = None  # type: ignore[assignment]
