"""Upcasting: an event's payload, written under an older schema version, in a later one's names.

A replay folds millions of events, so the work per event is a dictionary look-up for its plan
plus, only when something was renamed or added, one new dict. Plans are computed once per
(type, from version, to version) from the chain of schemas the vault went through.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventvault.errors import SchemaError
from eventvault.schemadoc.evolve import evolve, origins
from eventvault.schemadoc.kinds import Stored
from eventvault.schemadoc.model import Schema


@dataclass(frozen=True, slots=True)
class Plan:
    """How one type's payloads move from one version to another."""

    renames: Mapping[str, str]  # name in the old payload -> name now; only names that differ
    # Fields added since, each with the default it was added with: an entity created before
    # a field existed got that default when the field was added, whatever the default is now.
    defaults: Mapping[str, Stored | None]

    @property
    def identity(self) -> bool:
        return not self.renames and not self.defaults

    def apply(self, payload: dict[str, Any], created: bool) -> dict[str, Any]:
        """The payload in the target version's names; a `created` payload also gets the
        fields added since (an update or delete names only what it changed).

        Changes `payload` in place and returns it: the fold's payloads are freshly unpacked,
        and renaming one or two keys in place costs a fraction of building a new dict."""
        if self.renames:
            # Pop every old name before setting any new one: renames may swap names.
            moved = [(new, payload.pop(old)) for old, new in self.renames.items()
                     if old in payload]
            payload.update(moved)
        if created:
            for name, value in self.defaults.items():
                payload.setdefault(name, value)
        return payload


class Upcaster:
    """Plans for a chain of schema versions (oldest first), each a valid evolution of the one
    before: `evolve` is checked for every step, so a tampered chain is refused up front."""

    def __init__(self, chain: Sequence[Schema]) -> None:
        if not chain:
            raise SchemaError("a schema history needs at least one schema")
        for before, after in itertools.pairwise(chain):
            if after.version <= before.version:
                raise SchemaError(f"schema history is out of order: version {after.version} "
                                  f"follows version {before.version}")
            evolve(before, after)
        self.chain = tuple(chain)
        self.current = chain[-1]
        self._index = {schema.version: i for i, schema in enumerate(chain)}
        self._plans: dict[tuple[str, int, int], Plan | None] = {}
        # The replay loop's look-up: keyed without the target version, one tuple less per event.
        self._current_version = self.current.version
        self._current_plans: dict[tuple[str, int], Plan | None] = {}

    def plan(self, type_name: str, from_version: int, to_version: int | None = None
             ) -> Plan | None:
        """The plan for `type_name` payloads from `from_version` to `to_version` (default:
        the current one); None when the type no longer exists there."""
        target = self.current.version if to_version is None else to_version
        key = (type_name, from_version, target)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = self._make(type_name, from_version, target)
            return plan

    def upcast(self, type_name: str, from_version: int, payload: dict[str, Any],
               created: bool) -> dict[str, Any]:
        """The payload in the current version's names (see `Plan.apply`). An event written
        under the current version (most of them) costs one comparison."""
        if from_version == self._current_version:
            return payload
        try:
            plan = self._current_plans[type_name, from_version]
        except KeyError:
            plan = self._current_plans[type_name, from_version] = self.plan(type_name,
                                                                            from_version)
        if plan is None:
            raise SchemaError(f"type '{type_name}' does not exist in schema version "
                              f"{self._current_version}")
        return plan.apply(payload, created)

    def _make(self, type_name: str, start: int, end: int) -> Plan | None:
        for version in (start, end):
            if version not in self._index:
                raise SchemaError(f"schema version {version} is not in this vault's schema "
                                  f"history ({', '.join(str(s.version) for s in self.chain)})")
        if end < start:
            raise SchemaError(f"cannot upcast from schema version {start} down to {end}")
        first = self.chain[self._index[start]].type(type_name)
        if first is None:
            raise SchemaError(f"type '{type_name}' does not exist in schema version {start}")
        current = {name: name for name in first.field_names}  # payload name -> name now
        defaults: dict[str, Stored | None] = {}
        steps = self.chain[self._index[start]:self._index[end] + 1]
        for before, after in itertools.pairwise(steps):
            old, new = before.type(type_name), after.type(type_name)
            if old is None or new is None:
                return None
            renamed = {was: name for name, was in origins(old, new).items() if was is not None}
            current = {key: renamed[now] for key, now in current.items() if now in renamed}
            defaults = {renamed[now]: value for now, value in defaults.items() if now in renamed}
            for name, was in origins(old, new).items():
                if was is None:
                    field = new.field(name)
                    defaults[name] = field.default if field is not None else None
        return Plan({key: now for key, now in current.items() if key != now}, defaults)
