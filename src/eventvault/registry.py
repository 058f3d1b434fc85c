"""The entity registry: every entity type, its fields, natural key and references.

Projection tables, apply logic, reference validation, export and audit diffs are all driven
from these declarations. Adding a type is one `EntityType` here plus an alembic migration.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["str", "int", "bool"]

# uuid5 namespace for system entities: every init of every installation creates the same
# identities for `user:admin`, `placeholder:...` and so on, so a reinit does not fork them.
SYSTEM_NAMESPACE = uuid.UUID("6f1c1f0e-5a0b-4c1e-9d43-2f6f0e7a9b10")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: FieldKind = "str"
    required: bool = True
    default: str | int | bool | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """A field holding the UUID of another entity; stored as an integer foreign key."""

    name: str
    target: str
    required: bool = True

    @property
    def column(self) -> str:
        return f"{self.name}_id"


@dataclass(frozen=True, slots=True)
class EntityType:
    name: str
    table: str
    fields: tuple[Field, ...]
    references: tuple[Reference, ...] = ()
    natural_key: str | None = None

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every logical field, plain fields first, then references, in declaration order."""
        return tuple(f.name for f in self.fields) + tuple(r.name for r in self.references)

    def field(self, name: str) -> Field | None:
        return _FIELDS.get((self.name, name))

    def reference(self, name: str) -> Reference | None:
        return _REFERENCES.get((self.name, name))


USER_ROLES = ("admin", "author", "reviewer", "viewer")
DOCUMENT_STATUSES = ("draft", "in_review", "approved", "published", "archived")

# Declared in dependency order: every reference points at a type declared before it, so
# loading types in this order always finds the referenced rows already present.
ENTITY_TYPES: tuple[EntityType, ...] = (
    EntityType(
        "user",
        "users",
        (
            Field("username"),
            Field("email", required=False, default=""),
            Field("role", default="viewer"),
            Field("active", "bool", default=True),
        ),
        natural_key="username",
    ),
    EntityType(
        "workflow_state",
        "workflow_states",
        (
            Field("name"),
            # Space-separated names of the states a workflow may move to from this one.
            Field("transitions", required=False, default=""),
        ),
        natural_key="name",
    ),
    EntityType(
        "placeholder",
        "placeholders",
        (Field("key"), Field("value", required=False, default=""),
         Field("description", required=False, default="")),
        natural_key="key",
    ),
    EntityType(
        "backup_config",
        "backup_configs",
        (
            Field("name"),
            Field("schedule", required=False, default=""),
            Field("retention_days", "int", default=30),
            Field("enabled", "bool", default=True),
        ),
        natural_key="name",
    ),
    EntityType(
        "document",
        "documents",
        (Field("title"), Field("status", default="draft")),
        (Reference("author", "user"), Reference("reviewer", "user", required=False)),
    ),
    EntityType(
        "workflow",
        "workflows",
        (),
        (
            Reference("document", "document"),
            Reference("current_state", "workflow_state"),
            Reference("assignee", "user", required=False),
        ),
    ),
    EntityType(
        "backup_job",
        "backup_jobs",
        (Field("status", default="completed"), Field("note", required=False, default="")),
        (Reference("config", "backup_config"),),
    ),
    EntityType(
        "restore_job",
        "restore_jobs",
        (
            Field("status", default="completed"),
            Field("note", required=False, default=""),
        ),
        (Reference("requested_by", "user"), Reference("backup_job", "backup_job", required=False)),
    ),
)

REGISTRY: dict[str, EntityType] = {t.name: t for t in ENTITY_TYPES}
# Look-ups by (type, field name): the command path asks them for every field it writes.
_FIELDS = {(t.name, f.name): f for t in ENTITY_TYPES for f in t.fields}
_REFERENCES = {(t.name, r.name): r for t in ENTITY_TYPES for r in t.references}
TYPE_NAMES: tuple[str, ...] = tuple(REGISTRY)


def entity_type(name: str) -> EntityType:
    from eventvault.errors import UsageError

    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown entity type {name!r}; known types: {', '.join(TYPE_NAMES)}"
        ) from None


def referrers(target: str) -> list[tuple[EntityType, Reference]]:
    """Every (type, reference) that can point at entities of type `target`."""
    return [(t, r) for t in ENTITY_TYPES for r in t.references if r.target == target]


def system_uuid(type_name: str, natural_key: str) -> str:
    return str(uuid.uuid5(SYSTEM_NAMESPACE, f"{type_name}:{natural_key}"))
