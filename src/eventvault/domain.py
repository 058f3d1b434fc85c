"""The story's commands: conveniences over the one write path (entities.py).

`user add`, `document add`, `workflow move`... speak the story's field names (the built-in
dms schema version 1); each command translates them to the vault's current schema
(story_names.py) and writes through `Entities`, which checks the actor's role, the values,
the references and the natural key. A `Commands` object lives inside one write transaction:
everything it records commits together with its projection changes, or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from eventvault.entities import Actor, Entities
from eventvault.errors import UsageError, ValidationError
from eventvault.events import TRANSITIONED, UPDATED, FieldValue
from eventvault.schemadoc import parse_field
from eventvault.store import Appender, Head
from eventvault.system import INITIAL_STATE, SYSTEM_ACTOR, SYSTEM_ENTITIES, system_uuid

__all__ = ["Actor", "Commands"]


class Commands:
    """The story's commands inside one write transaction, over `Entities`."""

    def __init__(self, connection: Connection, appender: Appender, actor: Actor,
                 reason: str | None = None, max_text: int | None = None) -> None:
        self._entities = Entities(connection, appender, appender.tracker.history, actor,
                                  reason, max_text)
        self.connection = connection
        self.actor = actor
        self.reason = reason
        self._story = self._entities.story

    @property
    def head(self) -> Head:
        """The log's head as this transaction has written it."""
        return self._entities.head

    def flush(self) -> None:
        """Write pending events; the transaction's owner calls it before committing."""
        self._entities.flush()

    # --- in the story's names ------------------------------------------------------------

    def find(self, ref: str, type_name: str) -> dict[str, Any]:
        """A live entity by REF: its UUID, `type:natural_key`, or (for users) a username.
        The row's columns are the vault's current ones."""
        return self._entities.find(ref, type_name)

    def create(self, type_name: str, fields: Mapping[str, FieldValue],
               entity_id: str | None = None) -> str:
        """Record a new entity; `fields` in the story's names, references as UUIDs."""
        spec = self._entities.spec(type_name)
        return self._entities.create_entity(spec, self._story.to_current(type_name, fields),
                                            entity_id)

    def update(self, type_name: str, row: Mapping[str, Any],
               changes: Mapping[str, FieldValue], expected_version: int | None = None,
               event_type: str = UPDATED) -> str:
        """Record only the fields that really change; nothing at all if none does."""
        return self._entities.update_entity(
            self._entities.spec(type_name), row, self._story.to_current(type_name, changes),
            expected_version, event_type)

    def delete(self, type_name: str, row: Mapping[str, Any]) -> str:
        return self._entities.delete_entity(self._entities.spec(type_name), row)

    def record_access_denied(self, command: str) -> None:
        self._entities.record_access_denied(command)

    def _field(self, type_name: str, row: Mapping[str, Any], name: str) -> Any:
        """A row's value of the story's field `name` (a reference: its row ID)."""
        current = self._story.current(type_name, name)
        spec = self._entities.spec(type_name)
        reference = spec.reference(current)
        return row[reference.column if reference is not None else current]

    # --- users ---------------------------------------------------------------------------

    def add_user(self, username: str, role: str = "viewer", email: str = "") -> str:
        if not username or any(c.isspace() for c in username) or ":" in username:
            raise ValidationError(f"invalid username {username!r}: no spaces or colons")
        return self.create("user", {"username": username, "role": role, "email": email,
                                    "active": True})

    def update_user(self, ref: str, changes: Mapping[str, str]) -> str:
        row = self.find(ref, "user")
        return self._entities.update_entity(self._entities.spec("user"), row,
                                            self.parse_changes("user", changes))

    def delete_user(self, ref: str) -> str:
        row = self.find(ref, "user")
        username = self._field("user", row, "username")
        if username in (SYSTEM_ACTOR, "admin"):
            raise ValidationError(f"the system user {username!r} cannot be deleted")
        return self.delete("user", row)

    # --- documents -----------------------------------------------------------------------

    def add_document(self, title: str, author: str, reviewer: str | None = None) -> str:
        fields: dict[str, FieldValue] = {"title": title,
                                         "author": self.find(author, "user")["uuid"]}
        if reviewer:
            fields["reviewer"] = self.find(reviewer, "user")["uuid"]
        if not title.strip():
            raise ValidationError("a document needs a title")
        return self.create("document", fields)

    def update_document(self, ref: str, changes: Mapping[str, str],
                        expected_version: int | None = None) -> str:
        row = self.find(ref, "document")
        return self._entities.update_entity(self._entities.spec("document"), row,
                                            self.parse_changes("document", changes),
                                            expected_version)

    def delete_document(self, ref: str) -> str:
        return self.delete("document", self.find(ref, "document"))

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
        current_id = self._entities.uuid_of("workflow_state",
                                            self._field("workflow", row, "current_state"))
        current = self.find(str(current_id), "workflow_state")
        target = self.find(state, "workflow_state")
        name = self._story.current("workflow_state", "name")
        allowed = str(self._field("workflow_state", current, "transitions")).split()
        if target[name] not in allowed:
            raise ValidationError(
                f"workflow {row['uuid']} cannot move from {current[name]} to "
                f"{target[name]}; allowed: {', '.join(allowed) or 'none (final state)'}"
            )
        return self.update("workflow", row, {"current_state": target["uuid"]},
                           expected_version, TRANSITIONED)

    # --- jobs ----------------------------------------------------------------------------

    def add_backup_job(self, config: str, status: str = "completed", note: str = "") -> str:
        config_id = self.find(config, "backup_config")["uuid"]
        return self.create("backup_job", {"config": config_id, "status": status, "note": note})

    def add_restore_job(self, requested_by: str, backup_job: str | None = None,
                        status: str = "completed", note: str = "") -> str:
        fields: dict[str, FieldValue] = {
            "requested_by": self.find(requested_by, "user")["uuid"],
            "status": status, "note": note,
        }
        if backup_job:
            fields["backup_job"] = self.find(backup_job, "backup_job")["uuid"]
        return self.create("restore_job", fields)

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
                if not self._entities.exists(type_name, entity_id):
                    self.create(type_name, fields, entity_id)
                    created += 1
        return created

    # --- parsing -------------------------------------------------------------------------

    def parse_changes(self, type_name: str, changes: Mapping[str, str]
                      ) -> dict[str, FieldValue]:
        """`--set FIELD=VALUE` strings to stored values, in the vault's current names (a
        field may be named by its current or its story name); references by REF."""
        spec = self._entities.spec(type_name)
        typed: dict[str, FieldValue] = {}
        for given, text in changes.items():
            name = given if given in spec.field_names else self._story.current(type_name, given)
            field, reference = spec.field(name), spec.reference(name)
            if field is not None:
                if field.choices and text not in field.choices:  # bad input, as a bad field
                    raise UsageError(f"{type_name} {given} must be one of "
                                     f"{', '.join(map(str, field.choices))}, not {text!r}")
                typed[name] = parse_field(spec, name, text)
            elif reference is not None:
                empty = text.strip().lower() in ("", "none", "null")
                if empty and reference.required:
                    raise ValidationError(f"{type_name} {given} cannot be empty")
                typed[name] = None if empty else self.find(text, reference.target)["uuid"]
            else:
                raise UsageError(f"{type_name} has no field {given!r}; fields: "
                                 f"{', '.join(spec.field_names)}")
        return typed
