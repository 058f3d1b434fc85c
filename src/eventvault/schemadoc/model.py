"""The parsed schema: immutable declarations of entity types, fields and references.

Defaults and choices are held as *stored* values (kinds.py), exactly as an event payload
would hold them, so the canonical form and the digest never depend on how a file spelled them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eventvault.schemadoc.kinds import Stored


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A plain field. `required`: every entity has a value (given or the default), never
    empty. Not required: the value may be empty (None); absent on creation it is `default`."""

    name: str
    kind: str = "str"
    required: bool = True
    default: Stored | None = None
    renamed_from: str | None = None
    choices: tuple[Stored, ...] = ()  # empty: any value of the kind


@dataclass(frozen=True, slots=True)
class ReferenceSpec:
    """A field holding the UUID of an entity of type `target`."""

    name: str
    target: str
    required: bool = True
    renamed_from: str | None = None
    # The table column holding the target's row ID: derived once, as TypeSpec's names are
    # (the write path asks for it per reference per command), never compared.
    column: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", f"{self.name}_id")


@dataclass(frozen=True, slots=True)
class TypeSpec:
    name: str
    table: str
    fields: tuple[FieldSpec, ...] = ()
    references: tuple[ReferenceSpec, ...] = ()
    natural_key: tuple[str, ...] = ()  # empty: entities are named by UUID only
    writers: tuple[str, ...] = ("admin",)  # roles that may create, update and delete
    # Every logical field, plain fields first, then references, in declaration order: the
    # order of an entity's values in the state digest. Derived once (the write path asks
    # for it per command), never compared.
    field_names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    # Fields and references by name, for `field` and `reference`: derived once too.
    _fields: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)
    _references: dict[str, ReferenceSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_names", tuple(f.name for f in self.fields)
                           + tuple(r.name for r in self.references))
        # The first of a repeated name wins, as the scan over the tuples it replaces did
        # (the parser refuses repeated names anyway).
        object.__setattr__(self, "_fields", {f.name: f for f in reversed(self.fields)})
        object.__setattr__(self, "_references",
                           {r.name: r for r in reversed(self.references)})

    def field(self, name: str) -> FieldSpec | None:
        return self._fields.get(name)

    def reference(self, name: str) -> ReferenceSpec | None:
        return self._references.get(name)


@dataclass(frozen=True, slots=True)
class Schema:
    """A whole declaration. `types` is in dependency order: every required reference, and
    every optional one not on a cycle, points at a type listed before it."""

    name: str
    version: int
    types: tuple[TypeSpec, ...]

    def type(self, name: str) -> TypeSpec | None:
        return next((t for t in self.types if t.name == name), None)

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def referrers(self, target: str) -> list[tuple[TypeSpec, ReferenceSpec]]:
        """Every (type, reference) that can point at entities of type `target`."""
        return [(t, r) for t in self.types for r in t.references if r.target == target]


USER_ROLES = ("admin", "author", "reviewer", "viewer")
# The `user` type is always present: actors, roles and the system's own admin are users.
# A schema may declare it (to add fields or roles); one that does not gets this one.
USER_TYPE = TypeSpec(
    "user", "users",
    (
        FieldSpec("username"),
        FieldSpec("email", required=False, default=""),
        FieldSpec("role", default="viewer", choices=USER_ROLES),
        FieldSpec("active", "bool", default=True),
    ),
    natural_key=("username",),
)
