"""The generic entity commands: `entity add/update/delete` for any declared type.

Values come as the schema's kinds (`--set FIELD=VALUE`, or stored values through the API),
references as REFs of their targets (a UUID or TYPE:KEY); they are resolved here and written
through the one write path (entities.py), which checks the role, values and references.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eventvault.entities import Entities, is_uuid
from eventvault.errors import UsageError, ValidationError
from eventvault.events import FieldValue
from eventvault.schemadoc import TypeSpec, parse_assignments

# Types whose writes carry rules beyond `writers` (the last admin, valid usernames): the
# generic commands leave them to the story's own commands.
STORY_COMMANDS = {"user": "eventvault user add/update/delete"}


class EntityCommands(Entities):
    """`Entities` with the generic commands, inside one transaction."""

    def add(self, type_name: str, assignments: Iterable[str]) -> str:
        spec = self._generic(type_name)
        return self.create(type_name, parse_assignments(spec, assignments))

    def update(self, ref: str, assignments: Iterable[str]) -> str:
        spec, _ = self.lookup(ref)
        return self.change(ref, parse_assignments(self._generic(spec.name), assignments))

    def create(self, type_name: str, given: Mapping[str, Any], entity_id: str | None = None
               ) -> str:
        """Create from stored values (references as REFs); `entity_id`: a UUID the caller
        chose (app capture names rows by natural key), else a new one."""
        spec = self._generic(type_name)
        return self.create_entity(spec, self._resolve(spec, given), entity_id)

    def change(self, ref: str, given: Mapping[str, Any]) -> str:
        """Update from stored values (references as REFs); only real changes are recorded."""
        spec, row = self.lookup(ref)
        self._generic(spec.name)
        if not given:
            raise UsageError("nothing to change: give at least one --set FIELD=VALUE")
        return self.update_entity(spec, row, self._resolve(spec, given))

    def delete(self, ref: str) -> str:
        spec, row = self.lookup(ref)
        self._generic(spec.name)
        return self.delete_entity(spec, row)

    def _generic(self, type_name: str) -> TypeSpec:
        spec = self.spec(type_name)
        if type_name in STORY_COMMANDS:
            raise UsageError(f"{type_name} entities are written with `{STORY_COMMANDS[type_name]}`"
                             " (their rules: roles, the last admin)")
        return spec

    def _resolve(self, spec: TypeSpec, given: Mapping[str, Any]) -> dict[str, FieldValue]:
        """References given as REFs, as their targets' UUIDs; unknown fields refused."""
        resolved: dict[str, FieldValue] = {}
        for name, value in given.items():
            reference = spec.reference(name)
            if reference is None and spec.field(name) is None:
                raise UsageError(f"{spec.name} has no field {name!r}; fields: "
                                 f"{', '.join(spec.field_names)}")
            if reference is None or value is None:
                resolved[name] = value
                continue
            text = str(value)
            if ":" in text and not is_uuid(text):
                target = text.split(":", 1)[0]
                if target != reference.target and self.catalog.schema.type(target):
                    raise ValidationError(f"{spec.name} {name} must name a {reference.target},"
                                          f" not a {target} ({value})")
            resolved[name] = self.find(text, reference.target)["uuid"]
        return resolved
