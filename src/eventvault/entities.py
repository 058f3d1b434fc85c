"""The one write path for entities of any type the vault's schema declares.

An `Entities` lives inside one write transaction and works from the vault's current schema
(the one its log declares): types, fields, references and natural keys are looked up there,
never in code. Every write of the library, whether `entity add/update/delete`
(entity_commands.py) or one of the story's commands (domain.py), passes through
`append_event`, the one permission choke point: the actor's role is checked there (the
type's `writers`, and for the story's types the story's policy, permissions.py) and the
values' limits; the commands check kinds, choices, references and the natural key before,
and change the projection row in the same transaction after.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from eventvault import permissions, values
from eventvault.catalog import Catalog
from eventvault.errors import (
    ConcurrencyError,
    EntityAbsentError,
    IntegrityError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from eventvault.events import ACCESS_DENIED, CREATED, DELETED, UPDATED, FieldValue
from eventvault.fold import SchemaHistory
from eventvault.identity import IdentityMap
from eventvault.schemadoc import FieldSpec, ReferenceSpec, TypeSpec
from eventvault.store import Appender, Head, NewEvent
from eventvault.story_names import story_names
from eventvault.tables import projection_for


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    username: str
    role: str


@dataclass(frozen=True, slots=True)
class _Layout:
    """One type's fields and references by name, looked up per value on the write path
    (TypeSpec's `field`/`reference` scan its tuples)."""

    fields: dict[str, FieldSpec]
    references: dict[str, ReferenceSpec]
    plain: tuple[str, ...]  # plain fields in schema order
    bools: tuple[str, ...]
    blank: dict[str, FieldValue]  # a new entity before its given fields: defaults, no refs
    required: tuple[str, ...]  # fields and references a new entity must have

    @classmethod
    def of(cls, spec: TypeSpec) -> _Layout:
        blank: dict[str, FieldValue] = {f.name: f.default for f in spec.fields}
        blank.update({r.name: None for r in spec.references})
        return cls({f.name: f for f in spec.fields}, {r.name: r for r in spec.references},
                   tuple(f.name for f in spec.fields),
                   tuple(f.name for f in spec.fields if f.kind == "bool"), blank,
                   tuple(f.name for f in (*spec.fields, *spec.references) if f.required))


_LOOKUPS: dict[str, tuple[dict[str, TypeSpec], dict[str, _Layout]]] = {}


def _lookups(catalog: Catalog) -> tuple[dict[str, TypeSpec], dict[str, _Layout]]:
    """A schema's types and their layouts by name, derived once per process per schema (by
    its hash: a catalog never changes; a new schema is a new catalog), not per transaction,
    which a one-command transaction paid for every type."""
    found = _LOOKUPS.get(catalog.hash)
    if found is None:
        types = catalog.schema.types
        found = _LOOKUPS[catalog.hash] = ({t.name: t for t in types},
                                          {t.name: _Layout.of(t) for t in types})
    return found


class Entities:
    """Entity commands inside one transaction (`appender` None: read only).

    Rows it reads or writes go through the transaction's identity map (identity.py).
    """

    def __init__(self, connection: Connection, appender: Appender | None,
                 history: SchemaHistory, actor: Actor, reason: str | None = None,
                 max_text: int | None = None) -> None:
        self.connection = connection
        self._appender = appender  # private: every append goes through `append_event`
        self.history = history
        self.catalog = history.catalog
        self.story = story_names(history)
        self.actor = actor
        self.max_text = values.max_text_bytes(max_text)
        if reason is not None:
            values.check_text("the reason", reason, self.max_text)
        self.reason = reason
        self.tables = projection_for(self.catalog)
        self._specs, self._layouts = _lookups(self.catalog)
        # Private like the appender: only `_record` writes rows through them.
        self._identity = IdentityMap(connection, self.catalog, self.tables)
        self._rows = self._identity.rows

    @property
    def head(self) -> Head:
        """The log's head as this transaction has written it."""
        return self._writer().head

    def flush(self) -> None:
        """Write pending events; the transaction's owner calls it before committing."""
        if self._appender is not None:
            self._appender.flush()

    def _writer(self) -> Appender:
        if self._appender is None:
            raise UsageError("this is a read-only view of the vault; nothing can be written")
        return self._appender

    # --- look-ups ------------------------------------------------------------------------

    def spec(self, type_name: str) -> TypeSpec:
        """A type of the vault's current schema; an unknown one is refused, naming them."""
        found = self._specs.get(type_name)
        if found is None:
            raise UsageError(f"unknown entity type {type_name!r}; known types: "
                             f"{', '.join(self.catalog.type_names)}")
        return found

    def find(self, ref: str, type_name: str) -> dict[str, Any]:
        """A live entity of `type_name` by REF: its UUID, `type:KEY` or its KEY (a one-field
        natural key, for users the username)."""
        # A UUID this transaction has already resolved (most references a batch names):
        # the key is a canonical UUID of a live row of this type, so every check below
        # would pass and `_row` would return this very row.
        known = self._identity.known(type_name, ref)
        if known is not None:
            return known
        spec = self.spec(type_name)
        if not values.plainly_storable(ref, self.max_text):
            values.check_text(f"the {type_name} reference", ref, self.max_text)
        text = ref.strip()
        if ":" in text and not is_uuid(text):
            prefix, key = text.split(":", 1)
            if prefix != type_name:
                raise UsageError(f"{ref!r} is not a {type_name} reference")
            text = key
        row = self._row(spec, text)
        if row is None:
            if not is_uuid(text) and len(spec.natural_key) != 1:
                raise UsageError(f"{ref!r} is not a {type_name} reference: give its UUID")
            raise UsageError(f"no {type_name} {ref!r}")
        return row

    def lookup(self, ref: str) -> tuple[TypeSpec, dict[str, Any]]:
        """The live entity a REF names, of whatever type: a UUID or TYPE:KEY."""
        kind, colon, key = ref.partition(":")
        if colon and self.catalog.schema.type(kind) is not None:
            row = self._row(self.spec(kind), key.strip())
            if row is not None:
                return self.spec(kind), row
            raise EntityAbsentError(f"no live {kind} {key!r}")
        if is_uuid(ref.strip()):
            for spec in self.catalog.schema.types:
                row = self._row(spec, ref.strip())
                if row is not None:
                    return spec, row
        raise EntityAbsentError(f"no live entity {ref!r}; give its UUID or TYPE:KEY")

    def _row(self, spec: TypeSpec, text: str) -> dict[str, Any] | None:
        if is_uuid(text):
            canonical = text if CANONICAL_UUID.match(text) else str(uuid.UUID(text))
            return self._identity.get(spec.name, canonical, "uuid")
        if len(spec.natural_key) != 1:
            return None
        entity_id = self._identity.uuid_for_key(spec.name, text)
        if entity_id is not None:
            return self._identity.get(spec.name, entity_id, "uuid")
        return self._identity.get(spec.name, text, _column(spec, spec.natural_key[0]))

    def exists(self, type_name: str, entity_id: str) -> bool:
        """Whether a live entity of `type_name` has this UUID."""
        return self._identity.get(type_name, entity_id, "uuid") is not None

    def uuid_of(self, type_name: str, row_id: int | None) -> str | None:
        return self._identity.uuid_of(type_name, row_id)

    def logical_fields(self, spec: TypeSpec, row: Mapping[str, Any]) -> dict[str, FieldValue]:
        """An entity's fields in schema order, references as their targets' UUIDs."""
        layout = self._layouts.get(spec.name) or _Layout.of(spec)
        fields: dict[str, FieldValue] = {name: row[name] for name in layout.plain}
        for name in layout.bools:
            if fields[name] is not None:
                fields[name] = bool(fields[name])  # SQLite hands back 0/1
        uuid_of = self._identity.uuid_of
        for reference in spec.references:
            fields[reference.name] = uuid_of(reference.target, row[reference.column])
        return fields

    # --- the write path: stored values, references as UUIDs ------------------------------

    def create_entity(self, spec: TypeSpec, fields: Mapping[str, FieldValue],
                      entity_id: str | None = None) -> str:
        """Record a new entity: defaults for what is not given, then every check."""
        layout = self._layouts.get(spec.name) or _Layout.of(spec)
        given: dict[str, FieldValue] = {**layout.blank, **fields}
        missing = [name for name in layout.required if given[name] is None]
        if missing:
            raise ValidationError(f"a {spec.name} needs {', '.join(missing)}")
        self._check(spec, given)
        return self._record(spec, entity_id or new_uuid(), 1, CREATED, given)

    def update_entity(self, spec: TypeSpec, row: Mapping[str, Any],
                      changes: Mapping[str, FieldValue], expected_version: int | None = None,
                      event_type: str = UPDATED) -> str:
        """Record only the fields that really change; nothing at all if none does."""
        current = self._require_log_agrees(spec, row)
        if expected_version is not None and expected_version != row["version"]:
            raise ConcurrencyError(
                f"{spec.name} {row['uuid']} is at version {row['version']}, not "
                f"{expected_version}: someone changed it; reload and try again"
            )
        layout = self._layouts[spec.name]
        for name, value in changes.items():
            declared = layout.fields.get(name) or layout.references.get(name)
            if declared is None:
                raise UsageError(f"{spec.name} has no field {name!r}; fields: "
                                 f"{', '.join(spec.field_names)}")
            if value is None and declared.required:
                raise ValidationError(f"{spec.name} {name} cannot be empty")
        changed = {k: v for k, v in changes.items() if current.get(k) != v}
        if not changed:  # nothing to record, but a refusal is still a refusal
            self._authorize(spec, row["uuid"], event_type, changes)
            return str(row["uuid"])
        self._check(spec, changed, row)
        return self._record(spec, row["uuid"], row["version"] + 1, event_type, changed)

    def delete_entity(self, spec: TypeSpec, row: Mapping[str, Any]) -> str:
        """Record the deletion of an entity nothing refers to any more."""
        self._require_log_agrees(spec, row)
        blockers = []
        for source, reference in self.catalog.schema.referrers(spec.name):
            table = self.tables[source.name]
            for found in self.connection.execute(
                select(table.c.uuid).where(table.c[reference.column] == row["id"]).limit(5)
            ).scalars():
                blockers.append(f"{source.name} {found} ({reference.name})")
        if blockers:
            raise ValidationError(
                f"{spec.name} {_label(spec, row)} is still referenced by "
                f"{', '.join(blockers)}; change or delete those first"
            )
        return self._record(spec, row["uuid"], row["version"] + 1, DELETED, {})

    def record_access_denied(self, command: str) -> None:
        """The refused attempt itself goes into the audit trail, against the actor."""
        row = self.find(self.actor.id, "user")
        # The version from the log, not the row: a refusal is recorded even if the actor's
        # row has drifted.
        version = self._writer().tracker.entity("user", row["uuid"])[1]
        self._record(self.spec("user"), row["uuid"], version + 1, ACCESS_DENIED,
                     {"command": command})

    def append_event(self, spec: TypeSpec, entity_id: str, version: int, event_type: str,
                     fields: Mapping[str, FieldValue]) -> None:
        """Check the event is allowed and storable, then append it. Every write of the
        library passes here: this is where the role policy and the limits of stored values
        are enforced. Alone, for a bulk writer that changes the projection rows itself (the
        caller's job then); the commands use `_record`, which changes the row too."""
        appender = self._writer()
        if event_type != ACCESS_DENIED:
            self._authorize(spec, entity_id, event_type, fields)
        values.check_fields(spec.name, fields, self.max_text)
        appender.append(NewEvent(spec.name, entity_id, version, event_type, self.actor.id,
                                 fields, self.reason))

    def _record(self, spec: TypeSpec, entity_id: str, version: int, event_type: str,
                fields: Mapping[str, FieldValue]) -> str:
        """Append the event (`append_event`) and make the same change to the projection row."""
        self.append_event(spec, entity_id, version, event_type, fields)
        columns: dict[str, Any] = {"version": version}
        if event_type not in (DELETED, ACCESS_DENIED):
            references = self._layouts[spec.name].references
            for name, value in fields.items():
                reference = references.get(name)
                if reference is None:
                    columns[name] = value
                else:
                    columns[reference.column] = (
                        None if value is None else self.find(str(value), reference.target)["id"]
                    )
        if event_type == CREATED:
            row = {"uuid": entity_id, **columns}
            row["id"] = self._rows.insert(spec.name, row)
            self._identity.remember(spec.name, row)
        else:
            row = self.find(entity_id, spec.name)
            if event_type == DELETED:
                self._rows.delete(spec.name, row["id"])
                self._identity.forget(spec.name, row)
            else:
                self._rows.update(spec.name, row["id"], columns)
                self._identity.change(spec.name, row, columns)
        return entity_id

    # --- the checks ----------------------------------------------------------------------

    def _authorize(self, spec: TypeSpec, entity_id: str, event_type: str,
                   fields: Mapping[str, FieldValue]) -> None:
        """The one permission choke point: for the story's types its policy
        (permissions.py, in the story's field names), then the type's declared `writers`;
        for users, never the last active admin."""
        if spec.name in permissions.STORY_TYPES:
            owners: Mapping[str, object] = {}
            if spec.name == "document":
                owners = fields if event_type == CREATED else self._owners(spec, entity_id)
                owners = self.story.to_story(spec.name, owners)
            permissions.authorize(self.actor.username, self.actor.role, self.actor.id,
                                  spec.name, event_type, self.story.to_story(spec.name, fields),
                                  owners)
        if self.actor.role not in spec.writers:
            raise PermissionDeniedError(
                f"{self.actor.username} (role {self.actor.role}) may not write {spec.name} "
                f"entities (writers: {', '.join(spec.writers)}); ask an admin")
        if spec.name == "user" and event_type != CREATED:
            self._keep_an_admin(spec, entity_id, event_type, fields)

    def _owners(self, spec: TypeSpec, entity_id: str) -> Mapping[str, FieldValue]:
        """A document's fields for the policy: as the log says (the tracker has folded them
        already, and for the commands `_require_log_agrees` has held the row to them), so
        the row is not turned into fields a second time. The row must still be live."""
        row = self.find(entity_id, spec.name)  # a live row, as before (from memory mostly)
        before = self._writer().tracker.entity(spec.name, entity_id)[0]
        if before is None:
            return self.logical_fields(spec, row)
        return dict(zip(spec.field_names, before, strict=True))

    def _keep_an_admin(self, spec: TypeSpec, entity_id: str, event_type: str,
                       fields: Mapping[str, FieldValue]) -> None:
        """Refuse to demote, deactivate or delete the last active admin: without one, no
        one could ever change roles, reinit or replace the vault again."""
        role, active = self.story.current("user", "role"), self.story.current("user", "active")
        row = self.find(entity_id, "user")
        if row[role] != "admin" or not row[active]:
            return
        if event_type != DELETED and fields.get(role, "admin") == "admin" \
                and fields.get(active, True):
            return
        users = self.tables["user"]
        others = self.connection.execute(
            select(func.count()).select_from(users).where(
                users.c[role] == "admin", users.c[active].is_(True), users.c.uuid != entity_id)
        ).scalar_one()
        if not others:
            change = "deleted" if event_type == DELETED else (
                "deactivated" if fields.get(active) is False else "demoted")
            name = row[self.story.current("user", "username")]
            raise PermissionDeniedError(
                f"{name!r} is the last active admin and cannot be {change}; "
                "make another user an admin first"
            )

    def _require_log_agrees(self, spec: TypeSpec, row: Mapping[str, Any]
                            ) -> dict[str, FieldValue]:
        """Refuse to change an entity whose row has drifted from the log: a change decided
        on a row changed behind the log's back (a `version` above all) would be wrong.
        Returns the row's logical fields (logical_fields), which the log agrees with."""
        found, version = self._writer().tracker.entity(spec.name, row["uuid"])
        if found is not None and version == row["version"]:
            fields = self.logical_fields(spec, row)
            if list(fields.values()) == found:
                return fields
        raise IntegrityError(
            f"{spec.name} {row['uuid']}: the vault's tables (version {row['version']}) have "
            f"drifted from its log (version {version}); nothing was written; run "
            "`eventvault rebuild --as ADMIN` to rebuild them from the log"
        )

    def _check(self, spec: TypeSpec, given: Mapping[str, FieldValue],
               row: Mapping[str, Any] | None = None) -> None:
        """Choices, live references of the right type, a unique natural key."""
        layout = self._layouts[spec.name]
        for name, value in given.items():
            field = layout.fields.get(name)
            if field is not None and field.choices and value is not None \
                    and value not in field.choices:
                raise ValidationError(
                    f"{spec.name} {name} must be one of "
                    f"{', '.join(map(str, field.choices))}, not {value!r}")
            reference = layout.references.get(name)
            if reference is not None and value is not None \
                    and not self._is_live(reference.target, value):
                raise ValidationError(
                    f"{spec.name} {name} refers to {reference.target} {value}, which "
                    "does not exist"
                )
        if spec.natural_key and any(name in given for name in spec.natural_key):
            self._require_unique(spec, given, row)

    def _is_live(self, type_name: str, value: object) -> bool:
        """Whether `value` is the UUID of a live entity of `type_name`; one the identity map
        holds under exactly this key is (no UUID check or query needed)."""
        if not isinstance(value, str):
            return False
        if self._identity.known(type_name, value) is not None:
            return True
        return is_uuid(value) and self._identity.get(type_name, value, "uuid") is not None

    def _require_unique(self, spec: TypeSpec, given: Mapping[str, FieldValue],
                        row: Mapping[str, Any] | None) -> None:
        if len(spec.natural_key) == 1 and spec.field(spec.natural_key[0]) is not None:
            key = spec.natural_key[0]
            value = given[key]
            clash = self._identity.uuid_for_key(spec.name, str(value))
            if clash is None:
                found = self._identity.get(spec.name, value, key)
                clash = None if found is None else found["uuid"]
            if clash is not None and (row is None or clash != row["uuid"]):
                raise ValidationError(f"{spec.name} {value!r} exists already")
            return
        # A key of several fields, or a reference: one query over the key's columns.
        merged = {**(self.logical_fields(spec, row) if row is not None else {}), **given}
        table = self.tables[spec.name]
        query = select(table.c.uuid)
        for name in spec.natural_key:
            value = merged.get(name)
            reference = spec.reference(name)
            if reference is not None and value is not None:
                value = self.find(str(value), reference.target)["id"]
            query = query.where(table.c[_column(spec, name)] == value)
        if row is not None:
            query = query.where(table.c.id != row["id"])
        found = self.connection.execute(query.limit(1)).first()
        if found is not None:
            raise ValidationError(f"a {spec.name} with that {', '.join(spec.natural_key)} "
                                  f"exists already ({found[0]})")


def _column(spec: TypeSpec, name: str) -> str:
    reference = spec.reference(name)
    return reference.column if reference is not None else name


def _label(spec: TypeSpec, row: Mapping[str, Any]) -> str:
    if len(spec.natural_key) == 1 and spec.field(spec.natural_key[0]) is not None:
        return repr(row[spec.natural_key[0]])
    return str(row["uuid"])


def new_uuid() -> str:
    """A random (version 4) UUID in canonical form, as str(uuid.uuid4()) but formatted by
    hand: one per created entity, and the UUID object cost twice as much as the rest."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def is_uuid(text: str) -> bool:
    if CANONICAL_UUID.match(text):  # the common case, without building a UUID object
        return True
    if len(text) not in (32, 36):  # what the test below requires anyway: no exception
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) in (32, 36)
