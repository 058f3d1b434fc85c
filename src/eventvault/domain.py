"""Domain commands: validate, check permissions, then record events and update the projection.

A `Commands` object lives inside one write transaction: everything it records commits
together with its projection changes, or not at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from eventvault import permissions, values
from eventvault.errors import (
    ConcurrencyError,
    IntegrityError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from eventvault.events import (
    ACCESS_DENIED,
    CREATED,
    DELETED,
    TRANSITIONED,
    UPDATED,
    FieldValue,
)
from eventvault.identity import IdentityMap
from eventvault.registry import (
    DOCUMENT_STATUSES,
    REGISTRY,
    USER_ROLES,
    EntityType,
    entity_type,
    referrers,
    system_uuid,
)
from eventvault.store import Appender, NewEvent
from eventvault.system import INITIAL_STATE, SYSTEM_ACTOR, SYSTEM_ENTITIES
from eventvault.tables import projection as tables

CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("user", "role"): USER_ROLES,
    ("document", "status"): DOCUMENT_STATUSES,
}


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    username: str
    role: str


class Commands:
    """Domain commands inside one write transaction.

    Rows it reads or writes go through the transaction's identity map (identity.py).
    """

    def __init__(
        self, connection: Connection, appender: Appender, actor: Actor, reason: str | None = None,
        max_text: int | None = None,
    ) -> None:
        self.connection = connection
        self.appender = appender
        self.actor = actor
        self.max_text = values.max_text_bytes(max_text)
        if reason is not None:
            values.check_text("the reason", reason, self.max_text)
        self.reason = reason
        self.identity = IdentityMap(connection)
        self.rows = self.identity.rows

    def flush(self) -> None:
        """Write pending events; the transaction's owner calls it before committing."""
        self.appender.flush()

    # --- lookups -------------------------------------------------------------------------

    def find(self, ref: str, type_name: str) -> dict[str, Any]:
        """A live entity by REF: its UUID, `type:natural_key`, or (for users) a username."""
        entity = REGISTRY[type_name]
        values.check_text(f"the {type_name} reference", ref, self.max_text)
        text = ref.strip()
        if ":" in text and not _is_uuid(text):
            prefix, key = text.split(":", 1)
            if prefix != type_name:
                raise UsageError(f"{ref!r} is not a {type_name} reference")
            text = key
        if _is_uuid(text):
            canonical = text if CANONICAL_UUID.match(text) else str(uuid.UUID(text))
            row = self.identity.get(type_name, canonical, "uuid")
        elif entity.natural_key is not None:
            entity_id = self.identity.uuid_for_key(type_name, text)
            row = (self.identity.get(type_name, entity_id, "uuid") if entity_id
                   else self.identity.get(type_name, text, entity.natural_key))
        else:
            raise UsageError(f"{ref!r} is not a {type_name} reference: give its UUID")
        if row is None:
            raise UsageError(f"no {type_name} {ref!r}")
        return row

    def uuid_of(self, type_name: str, row_id: int | None) -> str | None:
        return self.identity.uuid_of(type_name, row_id)

    # --- recording -----------------------------------------------------------------------

    def _record(
        self, entity: EntityType, entity_id: str, version: int, event_type: str,
        fields: Mapping[str, FieldValue],
    ) -> str:
        """Check the event is allowed and storable, append it and make the same change to
        the projection row. Every write of the library passes here: this is where the role
        policy and the limits of stored values are enforced."""
        if event_type != ACCESS_DENIED:
            self._authorize(entity, entity_id, event_type, fields)
        values.check_fields(entity.name, fields, self.max_text)
        self.appender.append(
            NewEvent(entity.name, entity_id, version, event_type, self.actor.id, fields,
                     self.reason)
        )
        columns: dict[str, Any] = {"version": version}
        if event_type not in (DELETED, ACCESS_DENIED):
            for name, value in fields.items():
                reference = entity.reference(name)
                if reference is None:
                    columns[name] = value
                else:
                    columns[reference.column] = (
                        None if value is None else self.find(str(value), reference.target)["id"]
                    )
        if event_type == CREATED:
            row = {"uuid": entity_id, **columns}
            for reference in entity.references:  # every column, so the cached row is whole
                row.setdefault(reference.column, None)
            row["id"] = self.rows.insert(entity.name, row)
            self.identity.remember(entity.name, row)
        else:
            row = self.find(entity_id, entity.name)
            if event_type == DELETED:
                self.rows.delete(entity.name, row["id"])
                self.identity.forget(entity.name, row)
            else:
                self.identity.forget(entity.name, row)
                self.rows.update(entity.name, row["id"], columns)
                row.update(columns)
                self.identity.remember(entity.name, row)
        return entity_id

    def _authorize(self, entity: EntityType, entity_id: str, event_type: str,
                   fields: Mapping[str, FieldValue]) -> None:
        """The role policy (permissions.py) for one event, and the last active admin."""
        owners: Mapping[str, object] = {}
        if entity.name == "document":
            if event_type == CREATED:
                owners = fields
            else:
                row = self.find(entity_id, "document")
                owners = {"author": self.uuid_of("user", row["author_id"]),
                          "reviewer": self.uuid_of("user", row["reviewer_id"])}
        permissions.authorize(self.actor.username, self.actor.role, self.actor.id,
                              entity.name, event_type, fields, owners)
        if entity.name == "user" and event_type != CREATED:
            self._keep_an_admin(entity_id, event_type, fields)

    def _keep_an_admin(self, entity_id: str, event_type: str,
                       fields: Mapping[str, FieldValue]) -> None:
        """Refuse to demote, deactivate or delete the last active admin: without one, no
        one could ever change roles, reinit or replace the vault again."""
        row = self.find(entity_id, "user")
        if row["role"] != "admin" or not row["active"]:
            return
        if event_type != DELETED and fields.get("role", "admin") == "admin" \
                and fields.get("active", True):
            return
        users = tables["user"]
        others = self.connection.execute(
            select(func.count()).select_from(users).where(
                users.c.role == "admin", users.c.active.is_(True), users.c.uuid != entity_id)
        ).scalar_one()
        if not others:
            change = "deleted" if event_type == DELETED else (
                "deactivated" if fields.get("active") is False else "demoted")
            raise PermissionDeniedError(
                f"{row['username']!r} is the last active admin and cannot be {change}; "
                "make another user an admin first"
            )

    def create(
        self, type_name: str, fields: Mapping[str, FieldValue], entity_id: str | None = None
    ) -> str:
        """Record a new entity after checking its natural key and references."""
        entity = REGISTRY[type_name]
        values = {f.name: f.default for f in entity.fields}
        values.update(fields)
        missing = [f.name for f in entity.fields if values.get(f.name) is None]
        missing += [r.name for r in entity.references if r.required and values.get(r.name) is None]
        if missing:
            raise ValidationError(f"a {type_name} needs {', '.join(missing)}")
        self._check(entity, values)
        return self._record(entity, entity_id or str(uuid.uuid4()), 1, CREATED, values)

    def update(
        self, type_name: str, row: Mapping[str, Any], changes: Mapping[str, FieldValue],
        expected_version: int | None = None, event_type: str = UPDATED,
    ) -> str:
        """Record only the fields that really change; nothing at all if none does."""
        entity = REGISTRY[type_name]
        self._require_log_agrees(entity, row)
        if expected_version is not None and expected_version != row["version"]:
            raise ConcurrencyError(
                f"{type_name} {row['uuid']} is at version {row['version']}, not "
                f"{expected_version}: someone changed it; reload and try again"
            )
        current = self.logical_fields(entity, row)
        changed = {k: v for k, v in changes.items() if current.get(k) != v}
        if not changed:  # nothing to record, but a refusal is still a refusal
            self._authorize(entity, row["uuid"], event_type, changes)
            return str(row["uuid"])
        self._check(entity, changed, row)
        return self._record(entity, row["uuid"], row["version"] + 1, event_type, changed)

    def delete(self, type_name: str, row: Mapping[str, Any]) -> str:
        self._require_log_agrees(REGISTRY[type_name], row)
        blockers = []
        for source, reference in referrers(type_name):
            table = tables[source.name]
            for found in self.connection.execute(
                select(table.c.uuid).where(table.c[reference.column] == row["id"]).limit(5)
            ).scalars():
                blockers.append(f"{source.name} {found} ({reference.name})")
        if blockers:
            raise ValidationError(
                f"{type_name} {_label(REGISTRY[type_name], row)} is still referenced by "
                f"{', '.join(blockers)}; change or delete those first"
            )
        return self._record(REGISTRY[type_name], row["uuid"], row["version"] + 1, DELETED, {})

    def _require_log_agrees(self, entity: EntityType, row: Mapping[str, Any]) -> None:
        """Refuse to change an entity whose row has drifted from the log: a change decided
        on a row changed behind the log's back (a `version` above all) would be wrong."""
        values, version = self.appender.tracker.entity(entity.name, row["uuid"])
        if values is not None and version == row["version"] and \
                list(self.logical_fields(entity, row).values()) == values:
            return
        raise IntegrityError(
            f"{entity.name} {row['uuid']}: the vault's tables (version {row['version']}) have "
            f"drifted from its log (version {version}); nothing was written; run "
            "`eventvault rebuild --as ADMIN` to rebuild them from the log"
        )

    def logical_fields(self, entity: EntityType, row: Mapping[str, Any]
                       ) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {f.name: row[f.name] for f in entity.fields}
        for reference in entity.references:
            fields[reference.name] = self.uuid_of(reference.target, row[reference.column])
        return fields

    def _check(
        self, entity: EntityType, values: Mapping[str, FieldValue],
        row: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in values.items():
            choices = CHOICES.get((entity.name, name))
            if choices and value not in choices:
                raise ValidationError(
                    f"{entity.name} {name} must be one of {', '.join(choices)}, not {value!r}"
                )
            reference = entity.reference(name)
            # A reference must name a live entity of the right type.
            if reference is not None and value is not None and (
                not isinstance(value, str) or not _is_uuid(value)
                or self.identity.get(reference.target, value, "uuid") is None
            ):
                raise ValidationError(
                    f"{entity.name} {name} refers to {reference.target} {value}, which "
                    "does not exist"
                )
        key = entity.natural_key
        if key is not None and key in values:
            clash = self.identity.uuid_for_key(entity.name, str(values[key]))
            if clash is None:
                found = self.identity.get(entity.name, values[key], key)
                clash = None if found is None else found["uuid"]
            if clash is not None and (row is None or clash != row["uuid"]):
                raise ValidationError(f"{entity.name} {values[key]!r} exists already")

    # --- users ---------------------------------------------------------------------------

    def add_user(self, username: str, role: str = "viewer", email: str = "") -> str:
        if not username or any(c.isspace() for c in username) or ":" in username:
            raise ValidationError(f"invalid username {username!r}: no spaces or colons")
        return self.create("user", {"username": username, "role": role, "email": email,
                                    "active": True})

    def update_user(self, ref: str, changes: Mapping[str, str]) -> str:
        row = self.find(ref, "user")
        return self.update("user", row, self.parse_changes("user", changes))

    def delete_user(self, ref: str) -> str:
        row = self.find(ref, "user")
        if row["username"] in (SYSTEM_ACTOR, "admin"):
            raise ValidationError(f"the system user {row['username']!r} cannot be deleted")
        return self.delete("user", row)

    # --- documents -----------------------------------------------------------------------

    def add_document(self, title: str, author: str, reviewer: str | None = None) -> str:
        author_row = self.find(author, "user")
        fields: dict[str, FieldValue] = {"title": title, "author": author_row["uuid"]}
        if reviewer:
            fields["reviewer"] = self.find(reviewer, "user")["uuid"]
        if not title.strip():
            raise ValidationError("a document needs a title")
        return self.create("document", fields)

    def update_document(
        self, ref: str, changes: Mapping[str, str], expected_version: int | None = None
    ) -> str:
        row = self.find(ref, "document")
        return self.update("document", row, self.parse_changes("document", changes),
                           expected_version)

    def delete_document(self, ref: str) -> str:
        row = self.find(ref, "document")
        return self.delete("document", row)

    # --- workflows -----------------------------------------------------------------------

    def start_workflow(self, document_ref: str, assignee: str | None = None) -> str:
        fields: dict[str, FieldValue] = {
            "document": self.find(document_ref, "document")["uuid"],
            "current_state": self.find(INITIAL_STATE, "workflow_state")["uuid"],
        }
        if assignee:
            fields["assignee"] = self.find(assignee, "user")["uuid"]
        return self.create("workflow", fields)

    def move_workflow(self, ref: str, state: str, expected_version: int | None = None) -> str:
        row = self.find(ref, "workflow")
        current = self.find(str(self.uuid_of("workflow_state", row["current_state_id"])),
                            "workflow_state")
        target = self.find(state, "workflow_state")
        allowed = str(current["transitions"]).split()
        if target["name"] not in allowed:
            raise ValidationError(
                f"workflow {row['uuid']} cannot move from {current['name']} to "
                f"{target['name']}; allowed: {', '.join(allowed) or 'none (final state)'}"
            )
        return self.update("workflow", row, {"current_state": target["uuid"]},
                           expected_version, TRANSITIONED)

    # --- jobs ----------------------------------------------------------------------------

    def add_backup_job(self, config: str, status: str = "completed", note: str = "") -> str:
        config_id = self.find(config, "backup_config")["uuid"]
        return self.create("backup_job", {"config": config_id, "status": status, "note": note})

    def add_restore_job(
        self, requested_by: str, backup_job: str | None = None, status: str = "completed",
        note: str = "",
    ) -> str:
        fields: dict[str, FieldValue] = {
            "requested_by": self.find(requested_by, "user")["uuid"],
            "status": status, "note": note,
        }
        if backup_job:
            fields["backup_job"] = self.find(backup_job, "backup_job")["uuid"]
        return self.create("restore_job", fields)

    def record_access_denied(self, command: str) -> None:
        """The refused attempt itself goes into the audit trail, against the actor."""
        row = self.find(self.actor.id, "user")
        # The version from the log, not the row: a refusal is recorded even if the actor's
        # row has drifted.
        version = self.appender.tracker.entity("user", row["uuid"])[1]
        self._record(REGISTRY["user"], row["uuid"], version + 1, ACCESS_DENIED,
                     {"command": command})

    # --- system entities -----------------------------------------------------------------

    def ensure_system_entities(self, types: frozenset[str] | None = None) -> int:
        """Create any missing system entity, with its deterministic UUID. Idempotent.
        `types`: only those of these types (a vault of another schema has users only)."""
        created = 0
        for type_name, key, declarations in SYSTEM_ENTITIES:
            if types is not None and type_name not in types:
                continue
            for fields in declarations:
                entity_id = system_uuid(type_name, str(fields[key]))
                if self.identity.get(type_name, entity_id, "uuid") is None:
                    self.create(type_name, fields, entity_id)
                    created += 1
        return created

    # --- parsing -------------------------------------------------------------------------

    def parse_changes(self, type_name: str, changes: Mapping[str, str]) -> dict[str, FieldValue]:
        """`--set FIELD=VALUE` strings to typed field values; references by REF."""
        entity = entity_type(type_name)
        typed: dict[str, FieldValue] = {}
        for name, text in changes.items():
            field = entity.field(name)
            reference = entity.reference(name)
            if field is not None:
                choices = CHOICES.get((type_name, name))
                if choices and text not in choices:  # bad input, like an unknown field
                    raise UsageError(f"{type_name} {name} must be one of "
                                     f"{', '.join(choices)}, not {text!r}")
                typed[name] = _parse_value(field.kind, name, text)
            elif reference is not None:
                empty = text.strip().lower() in ("", "none", "null")
                if empty and reference.required:
                    raise ValidationError(f"{type_name} {name} cannot be empty")
                typed[name] = None if empty else self.find(text, reference.target)["uuid"]
            else:
                raise UsageError(
                    f"{type_name} has no field {name!r}; fields: {', '.join(entity.field_names)}"
                )
        return typed


def _parse_value(kind: str, name: str, text: str) -> Any:
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"{name} must be a whole number, not {text!r}") from None
    if kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise UsageError(f"{name} must be true or false, not {text!r}")
    return text


CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def _is_uuid(text: str) -> bool:
    if CANONICAL_UUID.match(text):  # the common case, without building a UUID object
        return True
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) in (32, 36)


def _label(entity: EntityType, row: Mapping[str, Any]) -> str:
    key = entity.natural_key
    return repr(row[key]) if key else str(row["uuid"])
