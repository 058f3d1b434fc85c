"""An application's state as the vault holds it, and the changes between two states.

A state maps type -> entity UUID -> field name -> stored value (references as the target's
UUID, None for NULL). Its digest is independent of the application's keys, so a source and a
restored target with different primary keys have equal digests when their content is equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import msgpack

from eventvault.app.identity import natural_uuid
from eventvault.app.mapping import AppMapping, AppTable
from eventvault.schemadoc.kinds import Stored

Fields = dict[str, Stored | None]
State = dict[str, dict[str, Fields]]


class StoredRows(Mapping[str, Fields]):
    """A type's entities as the vault's tables hold them: entity -> values in `names` order,
    each entity's field dict built when it is asked for. A restore reads every row of the
    vault but needs few of them as dicts: building them all was a tenth of it."""

    def __init__(self, names: Sequence[str], values: dict[str, Sequence[Stored | None]]
                 ) -> None:
        self.names = list(names)
        self.values = values

    def __getitem__(self, entity: str) -> Fields:
        return dict(zip(self.names, self.values[entity], strict=True))

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, entity: object) -> bool:
        return entity in self.values

    def rows(self, names: Sequence[str]) -> dict[str, tuple[Any, ...]] | None:
        """entity -> the values of `names` as a tuple; None when a name is not held."""
        if not names or not set(names) <= set(self.names):
            return None
        positions = [self.names.index(n) for n in names]
        if len(positions) == 1:
            return {e: (values[positions[0]],) for e, values in self.values.items()}
        take = itemgetter(*positions)  # a tuple, in C
        return {e: take(values) for e, values in self.values.items()}


# A state as read: a type's entities may be StoredRows
StateView = Mapping[str, Mapping[str, Fields]]


def field_values(entities: Mapping[str, Fields], name: str) -> dict[str, Stored | None]:
    """entity -> the value of its field `name` (None when it has none)."""
    if isinstance(entities, StoredRows) and name in entities.names:
        position = entities.names.index(name)
        return {e: values[position] for e, values in entities.values.items()}
    return {e: values.get(name) for e, values in entities.items()}


@dataclass(frozen=True, slots=True)
class Change:
    """One event to append: `action` is created, updated or deleted. An update holds only the
    fields that changed; a deletion none."""

    action: str
    type: str
    entity: str
    fields: Fields = field(default_factory=dict)


def counts(state: State) -> dict[str, int]:
    return {type_name: len(entities) for type_name, entities in state.items()}


def field_names(spec: AppTable) -> list[str]:
    """The names of a type's values in digest order: its fields, then its references."""
    return [f.name for f in spec.fields] + [r.name for r in spec.references]


def rows_of(state: StateView, mapping: AppMapping) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The state as `capture.read_rows` gives it: type -> entity -> values in digest order."""
    rows = {}
    for spec in mapping.tables:
        names = field_names(spec)
        entities = state.get(spec.type, {})
        if isinstance(entities, StoredRows) and (held := entities.rows(names)) is not None:
            rows[spec.type] = held
            continue
        if len(names) > 1:
            take = itemgetter(*names)  # a tuple, in C; a state from old events may lack one
            try:
                rows[spec.type] = {entity: take(values) for entity, values in entities.items()}
                continue
            except KeyError:
                pass
        rows[spec.type] = {entity: tuple([values.get(n) for n in names])
                           for entity, values in entities.items()}
    return rows


def digest(state: State, mapping: AppMapping) -> str:
    return rows_digest(rows_of(state, mapping), mapping)


def rows_digest(rows: dict[str, dict[str, tuple[Any, ...]]], mapping: AppMapping) -> str:
    """SHA-256 over every type in the mapping's order: the msgpack of [type, [[UUID, values in
    field order], ...] in UUID order] (one pack per type: a restore hashes 200,000 rows;
    msgpack packs a tuple as the array a list is)."""
    hasher = hashlib.sha256()
    for spec in mapping.tables:
        hasher.update(msgpack.packb([spec.type, sorted(rows.get(spec.type, {}).items())],
                                    use_bin_type=True))
    return hasher.hexdigest()


def first_difference(expected: State, found: State) -> str | None:
    """A line naming the first entity that differs, or None."""
    for type_name in sorted(set(expected) | set(found)):
        left, right = expected.get(type_name, {}), found.get(type_name, {})
        for entity in sorted(set(left) | set(right)):
            if entity not in right:
                return f"{type_name} {entity}: missing from the target"
            if entity not in left:
                return f"{type_name} {entity}: in the target, not in the backup"
            if left[entity] != right[entity]:
                name = next(n for n in sorted(set(left[entity]) | set(right[entity]))
                            if left[entity].get(n) != right[entity].get(n))
                return (f"{type_name} {entity}: field {name} is "
                        f"{right[entity].get(name)!r}, the backup has {left[entity].get(name)!r}")
    return None


def diff(previous: StateView, current: State, mapping: AppMapping) -> list[Change]:
    """The events that take `previous` to `current`: creations in dependency order (a
    reference to an entity created later in the same batch is set by an update after it),
    then updates, then deletions in reverse dependency order (referrers go first)."""
    created: list[Change] = []
    updates: list[Change] = []
    deleted: list[Change] = []
    # per type, the entities created in this batch and not placed yet
    pending = {t: {e for e in entities if e not in previous.get(t, {})}
               for t, entities in current.items()}
    for spec in mapping.tables:
        old, now = previous.get(spec.type, {}), current.get(spec.type, {})
        references = [(r.name, pending.setdefault(r.target, set())) for r in spec.references]
        mine = pending.setdefault(spec.type, set())
        for entity in sorted(now):
            values = now[entity]
            if entity in old:
                if values != old[entity]:
                    changed = {n: v for n, v in values.items() if old[entity].get(n) != v}
                    if changed:
                        updates.append(Change("updated", spec.type, entity, changed))
                continue
            later = {name: target for name, waiting in references  # itself too
                     if (target := values.get(name)) is not None and target in waiting}
            mine.discard(entity)  # placed
            created.append(Change("created", spec.type, entity,
                                  {**values, **dict.fromkeys(later)} if later else values))
            if later:
                updates.append(Change("updated", spec.type, entity, later))
    for spec in reversed(mapping.tables):
        now = current.get(spec.type, {})
        deleted.extend(Change("deleted", spec.type, entity)
                       for entity in sorted(previous.get(spec.type, {})) if entity not in now)
    return created + updates + deleted


def successors(state: StateView, mapping: AppMapping) -> dict[str, str]:
    """Natural UUID -> entity for the entities of `state` with a natural key that are not
    named by it (successors of a deleted entity, identity.successor): a read of the
    application names their rows by them (IdentityMap.named). The natural UUID is computed
    from the stored key values, references as the state holds them, as a read computes it."""
    found = {}
    for spec in mapping.tables:
        if spec.natural_key:
            names = spec.natural_key
            for entity, values in state.get(spec.type, {}).items():
                natural = natural_uuid(spec.type, [values.get(n) for n in names])
                if natural != entity:
                    found[natural] = entity
    return found


def renamed(state: State, names: dict[str, str], mapping: AppMapping) -> State:
    """`state` with the entities of `names` (UUID -> UUID) renamed, references too."""
    result: State = {}
    for spec in mapping.tables:
        references = [r.name for r in spec.references]
        result[spec.type] = {
            names.get(entity, entity): {**values, **{n: names[values[n]] for n in references
                                                    if values.get(n) in names}}
            for entity, values in state.get(spec.type, {}).items()}
    return result


def apply(state: State, changes: Iterable[Change]) -> State:
    """`state` with `changes` applied (a new state; the vault's fold does the same)."""
    result = {t: dict(entities) for t, entities in state.items()}
    for change in changes:
        entities = result.setdefault(change.type, {})
        if change.action == "deleted":
            del entities[change.entity]
        else:
            entities[change.entity] = {**entities.get(change.entity, {}), **change.fields}
    return result


def _plain(value: Stored | None) -> Any:
    return {"hex": value.hex()} if isinstance(value, bytes) else value


def _stored(value: Any) -> Stored | None:
    return bytes.fromhex(value["hex"]) if isinstance(value, dict) else value


def to_lines(state: State) -> Iterator[str]:
    """The state as JSON lines, one entity each (bytes as {"hex": ...})."""
    for type_name in sorted(state):
        for entity, values in sorted(state[type_name].items()):
            yield json.dumps({"type": type_name, "uuid": entity,
                              "fields": {n: _plain(v) for n, v in values.items()}},
                             ensure_ascii=False, sort_keys=True)


def from_lines(lines: Iterable[str]) -> State:
    state: State = {}
    for line in lines:
        record = json.loads(line)
        state.setdefault(record["type"], {})[record["uuid"]] = {
            n: _stored(v) for n, v in record["fields"].items()}
    return state
