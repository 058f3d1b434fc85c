"""The story's field names in a vault's current schema, and back.

The story's commands (`user add`, `document add`, `workflow move`, ...) and the audit's
readable names speak the built-in dms schema version 1 (frozen in dms_v1.schema). A vault
whose log starts from it may since have renamed fields (`schema apply`, `renamed_from`);
these maps carry the story's names to the vault's current ones and back. They are read from
the log's own schema history, so no second declaration of the types lives in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventvault.catalog import LEGACY_HASH, compile_schema
from eventvault.fold import SchemaHistory


@dataclass(frozen=True, slots=True)
class StoryNames:
    """Per type, the story names that differ now: story name -> current name (`forward`)
    and current name -> story name (`backward`). Empty for most vaults."""

    forward: dict[str, dict[str, str]] = field(default_factory=dict)
    backward: dict[str, dict[str, str]] = field(default_factory=dict)

    def current(self, type_name: str, name: str) -> str:
        """The current name of the story's field `name`."""
        renames = self.forward.get(type_name)
        return name if renames is None else renames.get(name, name)

    def to_current(self, type_name: str, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        renames = self.forward.get(type_name)
        if renames is None:  # the common case costs one look-up
            return fields
        return {renames.get(name, name): value for name, value in fields.items()}

    def to_story(self, type_name: str, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        renames = self.backward.get(type_name)
        if renames is None:
            return fields
        return {renames.get(name, name): value for name, value in fields.items()}


NONE = StoryNames()


def story_names(history: SchemaHistory) -> StoryNames:
    """The renames since dms version 1, when the log starts from it; none otherwise (a vault
    of another schema: the story's names are taken as they are, or refused as unknown)."""
    upcaster = history.upcaster
    if upcaster is None or compile_schema(history.chain[0]).hash != LEGACY_HASH:
        return NONE
    forward: dict[str, dict[str, str]] = {}
    first = history.chain[0].version
    for spec in history.chain[0].types:
        if history.catalog.schema.type(spec.name) is None:
            continue  # removed since: its commands fail naming the unknown type
        plan = upcaster.plan(spec.name, first)
        if plan is not None and plan.renames:
            forward[spec.name] = dict(plan.renames)
    backward = {type_name: {now: was for was, now in renames.items()}
                for type_name, renames in forward.items()}
    return StoryNames(forward, backward)
