"""Folding events into the logical state, checking each one as it goes.

The fold is the reference semantics of an event: replay, verify, point-in-time export and
the audit all use it. It refuses anything that would not apply cleanly — an unknown type or
schema version, a reference to an entity that does not exist at that point, an update of a
missing entity — naming the event's seq, so nothing is ever skipped silently.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator

from eventvault.digest import MODULUS, entity_hash
from eventvault.errors import DanglingReferenceError, IntegrityError
from eventvault.events import (
    ACCESS_DENIED,
    CREATED,
    DELETED,
    SCHEMA_VERSION,
    TRANSITIONED,
    UPDATED,
    Event,
    FieldValue,
    unpack_payload,
)
from eventvault.registry import REGISTRY, TYPE_NAMES

# Per type, per field: (position in the registry-ordered values, the Python type a plain
# field's value must have, the type a reference must point at, whether it may be None).
# One look-up per field of every event: this loop is most of a replay's Python time.
_KIND = {"str": str, "int": int, "bool": bool}
_SPECS: dict[str, dict[str, tuple[int, type | None, str | None, bool]]] = {
    t.name: {
        **{f.name: (i, _KIND[f.kind], None, False) for i, f in enumerate(t.fields)},
        **{r.name: (len(t.fields) + i, None, r.target, not r.required)
           for i, r in enumerate(t.references)},
    }
    for t in REGISTRY.values()
}
# Positions that may never be None: every plain field (NOT NULL columns), required references.
_REQUIRED = {
    name: [position for position, _kind, _target, nullable in specs.values() if not nullable]
    for name, specs in _SPECS.items()
}
SHARED_UP_TO = 16  # characters: plain string values this short are interned
_CHANGES = frozenset((UPDATED, TRANSITIONED, DELETED, ACCESS_DENIED))
_DEFAULTS = {
    t.name: [f.default for f in t.fields] + [None for _ in t.references] for t in REGISTRY.values()
}


class StateFold:
    """The logical state after some events: entity UUID -> (type, values in registry order).

    The state digest is updated incrementally but lazily: events only mark their entity as
    changed, and `digest()` rehashes just the entities changed since it was last asked
    (subtract the old hash, add the new one). An entity updated many times between two
    checkpoints is hashed once, not once per event.
    """

    def __init__(self) -> None:
        self.entities: dict[str, tuple[str, list[FieldValue]]] = {}
        self.hashes: dict[str, int] = {}
        self._digest = 0
        self._changed: set[str] = set()
        self.versions: dict[str, int] = {}
        self.counts: Counter[str] = Counter({name: 0 for name in TYPE_NAMES})
        self.last_seq = 0

    def apply(self, event: Event) -> None:
        # Unpacked once: a NamedTuple's attribute access costs more than the fold's checks.
        seq, type_name, entity_id, version, kind, schema_version, _a, _r, _t, payload, _h, _p = (
            event)
        specs = _SPECS.get(type_name)
        if specs is None:
            raise IntegrityError(f"seq {seq}: unknown entity type {type_name!r}")
        if schema_version != SCHEMA_VERSION:
            raise IntegrityError(
                f"seq {seq}: schema version {schema_version} is not known to this "
                f"eventvault (it reads version {SCHEMA_VERSION}); upgrade eventvault"
            )
        if kind == CREATED:
            if entity_id in self.versions:
                raise IntegrityError(f"seq {seq}: {type_name} {entity_id} is created twice")
            values = list(_DEFAULTS[type_name])
            self._set(seq, type_name, entity_id, specs, values, unpack_payload(payload))
            missing = [REGISTRY[type_name].field_names[i]
                       for i in _REQUIRED[type_name] if values[i] is None]
            if missing:
                raise IntegrityError(
                    f"seq {seq}: {type_name} {entity_id} is created without "
                    f"{', '.join(missing)}"
                )
            self.entities[entity_id] = (type_name, values)
            self._changed.add(entity_id)
            self.counts[type_name] += 1
        elif kind in _CHANGES:
            current = self.entities.get(entity_id)
            if current is None or current[0] != type_name:
                raise DanglingReferenceError(
                    f"seq {seq}: {kind} event for {type_name} {entity_id}, "
                    "which does not exist at that point"
                )
            if kind == DELETED:
                del self.entities[entity_id]
                self._changed.add(entity_id)
                self.counts[type_name] -= 1
            elif kind != ACCESS_DENIED:
                self._set(seq, type_name, entity_id, specs, current[1], unpack_payload(payload))
                self._changed.add(entity_id)
        else:
            raise IntegrityError(f"seq {seq}: unknown event type {kind!r}")
        expected = self.versions.get(entity_id, 0) + 1
        if version != expected:
            raise IntegrityError(
                f"seq {seq}: {type_name} {entity_id} has version {version}, expected {expected}"
            )
        self.versions[entity_id] = expected
        self.last_seq = seq

    def _set(
        self, seq: int, type_name: str, entity_id: str,
        specs: dict[str, tuple[int, type | None, str | None, bool]],
        values: list[FieldValue], changes: dict[str, FieldValue],
    ) -> None:
        for name, value in changes.items():
            spec = specs.get(name)
            if spec is None:
                raise IntegrityError(f"seq {seq}: {type_name} has no field {name!r}")
            position, kind, target_type, nullable = spec
            if value is None:
                if not nullable:
                    raise IntegrityError(
                        f"seq {seq}: {type_name} field {name!r} cannot be empty")
            elif target_type is not None:
                target = self.entities.get(value) if type(value) is str else None
                if target is None or target[0] != target_type:
                    raise DanglingReferenceError(
                        f"seq {seq}: {type_name} {entity_id} field {name!r} refers to "
                        f"{target_type} {value}, which does not exist at that point"
                    )
                # Thousands of documents name the same few users: one string object for
                # each referenced UUID, not one per reference (measured: ~50 MB at 1M events).
                value = sys.intern(value)  # type: ignore[arg-type]
            elif type(value) is not kind:  # `is`: True must not pass as an int
                raise IntegrityError(
                    f"seq {seq}: {type_name} field {name!r} has a value of the wrong "
                    f"type ({type(value).__name__})"
                )
            elif kind is str and len(value) <= SHARED_UP_TO:  # type: ignore[arg-type]
                # Short values repeat (statuses, roles): one object each, not one per entity.
                value = sys.intern(value)  # type: ignore[arg-type]
            values[position] = value

    def live(self) -> Iterator[tuple[str, str, list[FieldValue]]]:
        for entity_id, (type_name, values) in self.entities.items():
            yield type_name, entity_id, values

    def digest(self) -> str:
        for entity_id in self._changed:
            self._digest -= self.hashes.pop(entity_id, 0)
            found = self.entities.get(entity_id)
            if found is not None:
                new = entity_hash(found[0], entity_id, found[1])
                self.hashes[entity_id] = new
                self._digest += new
        self._changed.clear()
        return f"{self._digest % MODULUS:064x}"


def entity_values(type_name: str, values: list[FieldValue] | None,
                  changes: dict[str, FieldValue]) -> list[FieldValue]:
    """An entity's values (registry order) after an event's fields: a new list, `values`
    None for a created entity. Without the fold's checks: for events the command path has
    checked before writing them."""
    specs = _SPECS[type_name]
    new = list(_DEFAULTS[type_name] if values is None else values)
    for name, value in changes.items():
        new[specs[name][0]] = value
    return new
