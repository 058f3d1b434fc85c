"""Folding events into the logical state, checking each one as it goes.

The fold is the reference semantics of an event: replay, verify, point-in-time export and
the audit all use it. It refuses anything that would not apply cleanly — an unknown type or
schema version, a reference to an entity that does not exist at that point, an update of a
missing entity — naming the event's seq, so nothing is ever skipped silently.

The types and fields are the log's own (catalog.py): the built-in dms schema version 1
until a `schema` event declares another, after which live entities move to the new layout
and older events are upcast as they are folded.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

from eventvault.catalog import (
    SCHEMA_ENTITY,
    SCHEMA_TYPE,
    Catalog,
    compile_schema,
    legacy,
    schema_from_payload,
)
from eventvault.digest import MODULUS, entity_hash
from eventvault.errors import DanglingReferenceError, IntegrityError, SchemaError
from eventvault.events import (
    ACCESS_DENIED,
    CREATED,
    DELETED,
    TRANSITIONED,
    UPDATED,
    Event,
    FieldValue,
    unpack_payload,
)
from eventvault.schemadoc import Schema, Upcaster, evolve
from eventvault.schemadoc.evolve import origins

_intern = sys.intern  # one global look-up a call, not two (the fold calls it per field)
SHARED_UP_TO = 16  # characters: plain string values this short are interned
_CHANGES = frozenset((UPDATED, TRANSITIONED, DELETED, ACCESS_DENIED))


class SchemaHistory:
    """The schemas a log went through, oldest first, and the upcaster between them."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or legacy()
        self.chain: list[Schema] = [self.catalog.schema]
        self.upcaster: Upcaster | None = None
        self.declared = 0  # schema events so far: the schema entity's version

    def copy(self) -> SchemaHistory:
        found = SchemaHistory(self.catalog)
        found.chain, found.upcaster, found.declared = self.chain, self.upcaster, self.declared
        return found

    def declare(self, seq: int, schema: Schema, live: Counter[str], first: bool) -> Catalog:
        """Move to `schema` (declared at `seq`); `first`: the log's first event, which may
        declare any schema (a vault created for it)."""
        self.declared += 1
        if first:
            self.catalog = compile_schema(schema)
            self.chain, self.upcaster = [schema], None
            return self.catalog
        try:
            change = evolve(self.catalog.schema, schema)
        except SchemaError as error:
            raise IntegrityError(f"seq {seq}: {error}") from None
        still = [name for name in change.removed_types if live.get(name)]
        if still:
            raise IntegrityError(f"seq {seq}: schema version {schema.version} removes "
                                 f"{', '.join(still)}, which still has live entities")
        self.catalog = compile_schema(schema)
        self.chain = [*self.chain, schema]  # a new list: copies share the old one
        self.upcaster = Upcaster(self.chain)
        return self.catalog

    def upcast(self, seq: int, type_name: str, version: int, payload: dict[str, Any],
               created: bool) -> dict[str, Any]:
        if self.upcaster is None or version > self.catalog.version:
            raise IntegrityError(
                f"seq {seq}: schema version {version} is not known to this log (it is at "
                f"version {self.catalog.version})")
        try:
            return self.upcaster.upcast(type_name, version, payload, created)
        except SchemaError as error:
            raise IntegrityError(f"seq {seq}: {error}") from None


def relayout(old: Catalog, new: Catalog, type_name: str
             ) -> list[tuple[int | None, Any]] | None:
    """How an entity's values move from `old`'s layout of a type to `new`'s: per new
    position (old position or None, default); None when nothing moves."""
    before, after = old.schema.type(type_name), new.schema.type(type_name)
    assert before is not None and after is not None
    if before.field_names == after.field_names:
        return None
    found = origins(before, after)
    position = {name: i for i, name in enumerate(before.field_names)}
    defaults = new.defaults[type_name]
    return [(position[found[name]] if found[name] is not None else None, defaults[i])
            for i, name in enumerate(after.field_names)]


VALUES = 2  # where an entity's field values start in its record: (type, version, *values)


class StateFold:
    """The logical state after some events: entity UUID -> (type, version, *values in schema
    order). One tuple an entity, version included, replaced by a new one on every change: a
    tuple, a list and an entry in a second dict an entity cost ~150 bytes more (a replay
    holds a million of them; measured with the type names shared: 636 -> ~430 bytes an
    entity's RSS).

    The state digest is updated incrementally but lazily: events only mark their entity as
    changed, and `digest()` rehashes just the entities changed since it was last asked
    (subtract the old hash, add the new one). An entity updated many times between two
    checkpoints is hashed once, not once per event. Until the first digest nothing is marked:
    every live entity is hashed then, and `final_digest()` (a replay's one digest) keeps no
    hash at all (a set and a dict of every entity: ~150 bytes a live entity).
    """

    def __init__(self) -> None:
        self.entities: dict[str, tuple[Any, ...]] = {}
        self.hashes: dict[str, int] = {}
        self._digest = 0
        self._changed: set[str] | None = None  # None: no digest taken yet
        self._deleted: set[str] = set()  # an entity ID is never used again
        self._schema_versions: dict[str, int] = {}  # the schema entity's, not in `entities`
        self.history = SchemaHistory()
        self._use(self.history.catalog)
        self.counts: Counter[str] = Counter(self.catalog.zero_counts())
        self.last_seq = 0

    def _use(self, catalog: Catalog) -> None:
        # The per-event look-ups, held as attributes: one dict access each in `apply`.
        self.catalog = catalog
        self._specs = catalog.specs
        self._required = catalog.required
        self._defaults = catalog.defaults
        self._version = catalog.version

    def version(self, entity_id: str) -> int | None:
        """A live entity's version, None for one that is not live."""
        record = self.entities.get(entity_id)
        return None if record is None else record[1]

    def values(self, entity_id: str) -> tuple[str, list[FieldValue]] | None:
        """A live entity's (type, values in schema order), None for one that is not live."""
        record = self.entities.get(entity_id)
        return None if record is None else (record[0], list(record[VALUES:]))

    def apply(self, event: Event | list[Any]) -> None:
        """Fold one event: an `Event`, or a record's decoded fields (package.frame_records),
        whose first ten are an Event's (a replay builds no Event)."""
        # Read by index, not attribute: a NamedTuple's attribute access costs more than the
        # fold's checks, and a record's 10 or 11 fields cannot be unpacked as one.
        seq, type_name, entity_id, version, kind = (
            event[0], event[1], event[2], event[3], event[4])
        specs = self._specs.get(type_name)
        entities = self.entities
        record: list[Any] | None = None  # the entity's new record, None if it has none now
        if specs is None:
            if type_name != SCHEMA_TYPE:
                raise IntegrityError(f"seq {seq}: unknown entity type {type_name!r}")
            self._declare(seq, kind, entity_id, event[9])
            expected = self._schema_versions.get(entity_id, 0) + 1
            self._schema_versions[entity_id] = expected
        elif kind == CREATED:
            if entity_id in entities or entity_id in self._deleted or (
                    entity_id in self._schema_versions):
                raise IntegrityError(f"seq {seq}: {type_name} {entity_id} is created twice")
            # The type's name as one shared string, not the copy each decoded event brings.
            record = [_intern(type_name), 1, *self._defaults[type_name]]
            changes = unpack_payload(event[9])
            if event[5] != self._version:
                changes = self.history.upcast(seq, type_name, event[5], changes, True)
            self._set(seq, type_name, entity_id, specs, record, changes)
            for i in self._required[type_name]:
                if record[i + VALUES] is None:
                    self._refuse_missing(seq, type_name, entity_id, record)
            self.counts[type_name] += 1
            expected = 1
        elif kind in _CHANGES:
            current = entities.get(entity_id)
            if current is None or current[0] != type_name:
                raise DanglingReferenceError(
                    f"seq {seq}: {kind} event for {type_name} {entity_id}, "
                    "which does not exist at that point"
                )
            if event[5] > self._version:
                self.history.upcast(seq, type_name, event[5], {}, False)  # refuses
            expected = current[1] + 1
            if kind == DELETED:
                del entities[entity_id]
                self._deleted.add(entity_id)
                if self._changed is not None:
                    self._changed.add(entity_id)
                self.counts[type_name] -= 1
            else:
                record = list(current)
                if kind != ACCESS_DENIED:
                    changes = unpack_payload(event[9])
                    if event[5] != self._version:
                        changes = self.history.upcast(seq, type_name, event[5], changes,
                                                      False)
                    self._set(seq, type_name, entity_id, specs, record, changes)
        else:
            raise IntegrityError(f"seq {seq}: unknown event type {kind!r}")
        if version != expected:
            raise IntegrityError(
                f"seq {seq}: {type_name} {entity_id} has version {version}, expected {expected}"
            )
        if record is not None:
            record[1] = expected
            entities[entity_id] = tuple(record)
            if self._changed is not None:
                self._changed.add(entity_id)
        self.last_seq = seq

    def _refuse_missing(self, seq: int, type_name: str, entity_id: str,
                        record: list[Any]) -> None:
        missing = [self.catalog.names[type_name][i]
                   for i in self._required[type_name] if record[i + VALUES] is None]
        raise IntegrityError(
            f"seq {seq}: {type_name} {entity_id} is created without {', '.join(missing)}")

    def _declare(self, seq: int, kind: str, entity_id: str, payload: bytes) -> None:
        """A schema event: the log moves to the schema it declares; live entities of a type
        whose fields changed move to the new layout (added fields get their defaults)."""
        if kind not in (CREATED, UPDATED) or entity_id != SCHEMA_ENTITY:
            raise IntegrityError(f"seq {seq}: malformed schema event ({kind} {entity_id})")
        schema = schema_from_payload(unpack_payload(payload), f"seq {seq}")
        old = self.catalog
        new = self.history.declare(seq, schema, self.counts, first=self.last_seq == 0)
        moves = {name: relayout(old, new, name) for name in new.type_names
                 if name in old.specs}
        for found_id, record in self.entities.items():
            move = moves.get(record[0])
            if move is not None:
                # Same keys: replacing values while iterating the dict is allowed.
                self.entities[found_id] = (*record[:VALUES], *(
                    default if at is None else record[at + VALUES] for at, default in move))
                if self._changed is not None:
                    self._changed.add(found_id)
        self._use(new)
        self.counts = Counter({name: self.counts.get(name, 0) for name in new.type_names})

    def _set(
        self, seq: int, type_name: str, entity_id: str,
        specs: dict[str, tuple[int, type | None, str | None, bool]],
        record: list[Any], changes: dict[str, FieldValue],
    ) -> None:
        entities = self.entities
        for name, value in changes.items():
            try:
                position, kind, target_type, nullable = specs[name]
            except KeyError:
                raise IntegrityError(f"seq {seq}: {type_name} has no field {name!r}") from None
            if value is None:
                if not nullable:
                    raise IntegrityError(
                        f"seq {seq}: {type_name} field {name!r} cannot be empty")
            elif target_type is not None:
                target = entities.get(value) if type(value) is str else None
                if target is None or target[0] != target_type:
                    raise DanglingReferenceError(
                        f"seq {seq}: {type_name} {entity_id} field {name!r} refers to "
                        f"{target_type} {value}, which does not exist at that point"
                    )
                # Thousands of documents name the same few users: one string object for
                # each referenced UUID, not one per reference (measured: ~50 MB at 1M events).
                value = _intern(value)  # type: ignore[arg-type]
            elif type(value) is not kind:  # `is`: True must not pass as an int
                raise IntegrityError(
                    f"seq {seq}: {type_name} field {name!r} has a value of the wrong "
                    f"type ({type(value).__name__})"
                )
            elif kind is str and len(value) <= SHARED_UP_TO:  # type: ignore[arg-type]
                # Short values repeat (statuses, roles): one object each, not one per entity.
                value = _intern(value)  # type: ignore[arg-type]
            record[position + VALUES] = value

    def live(self) -> Iterator[tuple[str, str, list[FieldValue]]]:
        for entity_id, record in self.entities.items():
            yield record[0], entity_id, list(record[VALUES:])

    def digest(self) -> str:
        if self._changed is None:  # the first: every live entity, each hash kept
            self._changed = set()
            self._digest = 0
            for entity_id, record in self.entities.items():
                new = self.hashes[entity_id] = entity_hash(record[0], entity_id,
                                                           record[VALUES:])
                self._digest += new
            return f"{self._digest % MODULUS:064x}"
        for entity_id in self._changed:
            self._digest -= self.hashes.pop(entity_id, 0)
            found = self.entities.get(entity_id)
            if found is not None:
                new = entity_hash(found[0], entity_id, found[VALUES:])
                self.hashes[entity_id] = new
                self._digest += new
        self._changed.clear()
        return f"{self._digest % MODULUS:064x}"

    def final_digest(self) -> str:
        """The digest now, keeping no per-entity hash where none is kept yet: for a fold
        that will not be asked again (`digest()` after it is still right, just slower)."""
        if self._changed is not None:
            return self.digest()
        total = sum(entity_hash(record[0], entity_id, record[VALUES:])
                    for entity_id, record in self.entities.items())
        return f"{total % MODULUS:064x}"


def entity_values(catalog: Catalog, type_name: str, values: list[FieldValue] | None,
                  changes: dict[str, FieldValue]) -> list[FieldValue]:
    """An entity's values (schema order) after an event's fields: a new list, `values`
    None for a created entity. Without the fold's checks: for events the command path has
    checked before writing them, in `catalog`'s names."""
    specs = catalog.specs[type_name]
    new = list(catalog.defaults[type_name] if values is None else values)
    for name, value in changes.items():
        new[specs[name][0]] = value
    return new


def declared_counts(counts: Counter[str], event: Event) -> tuple[Counter[str], bytes]:
    """`counts` over the types a schema event declares (a new type at 0, a removed one
    gone), and the schema's canonical bytes: for readers that count from the type columns
    without folding."""
    payload = unpack_payload(event.payload)
    schema = schema_from_payload(payload, f"seq {event.seq}")
    return Counter({name: counts.get(name, 0) for name in schema.type_names}), \
        payload["canonical"]
