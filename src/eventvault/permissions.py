"""Who may do what: the role policy, checked at the one place every write passes through.

`authorize` is called by `Entities.append_event` (entities.py) for every event of the
story's types, whichever command asked for it (the story's `user add`, `document add`... or
the generic `entity add/update/delete`), so no path through the library writes what the
actor's role does not allow; the type's declared `writers` are checked there too. It is told
who acts, what kind of event on which entity (in the story's field names), and whose the
entity is.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventvault.errors import PermissionDeniedError

# Actions every event maps to; the policy names, for each role, the actions it may take.
POLICY: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "user.create", "user.update", "user.delete", "user.role",
        "document.create", "document.update", "document.delete",
        "workflow.start", "workflow.move", "workflow.delete", "backup.record",
        "restore.record", "system.configure", "vault.reinit", "vault.replace", "vault.rebuild",
        "schema.apply",
    }),
    "author": frozenset({"document.create", "document.update", "document.delete"}),
    "reviewer": frozenset({"document.update", "workflow.start", "workflow.move"}),
    "viewer": frozenset(),
}

# What each action is called in a refusal: "<user> (role <r>) may not <this>".
DESCRIPTIONS: dict[str, str] = {
    "user.create": "create users", "user.update": "change users", "user.role": "change users",
    "user.delete": "delete users", "document.create": "create documents",
    "document.update": "edit this document", "document.delete": "delete this document",
    "workflow.start": "start workflows", "workflow.move": "move workflows",
    "workflow.delete": "delete workflows", "backup.record": "record backup jobs",
    "restore.record": "record restore jobs", "system.configure": "change system entities",
    "vault.reinit": "reinit the vault", "vault.replace": "replace the vault",
    "vault.rebuild": "rebuild the vault", "schema.apply": "change the vault's schema",
}

# The story's types, whose rules `authorize` knows; a declared type has only its `writers`.
STORY_TYPES = frozenset({"user", "document", "workflow", "backup_job", "restore_job",
                         "workflow_state", "placeholder", "backup_config"})

# Fields of a user that only `user.role` may change: who is an admin, and who is active.
PRIVILEGE_FIELDS = frozenset({"role", "active"})
# Roles whose document actions are limited to documents they are named on, by this field.
OWNER_FIELD = {"author": "author", "reviewer": "reviewer"}


def action_for(entity_type: str, event_type: str, fields: Mapping[str, object]) -> str:
    """The action an event of `event_type` on an `entity_type` takes."""
    if entity_type == "user":
        if event_type == "created":
            return "user.create"
        if event_type == "deleted":
            return "user.delete"
        return "user.role" if PRIVILEGE_FIELDS & fields.keys() else "user.update"
    if entity_type == "document":
        return {"created": "document.create", "deleted": "document.delete"}.get(
            event_type, "document.update")
    if entity_type == "workflow":
        return {"created": "workflow.start", "deleted": "workflow.delete"}.get(
            event_type, "workflow.move")
    if entity_type == "backup_job":
        return "backup.record"
    if entity_type == "restore_job":
        return "restore.record"
    return "system.configure"  # workflow states, placeholders, backup configs


def require(username: str, role: str, action: str, command: str | None = None) -> None:
    if action not in POLICY.get(role, frozenset()):
        raise PermissionDeniedError(
            f"{username} (role {role}) may not {command or DESCRIPTIONS[action]}; ask an admin"
        )


def authorize(
    username: str, role: str, actor_id: str, entity_type: str, event_type: str,
    fields: Mapping[str, object], owners: Mapping[str, object],
) -> None:
    """Refuse (PermissionDeniedError) an event the actor may not record.

    `owners`: the document's `author` and `reviewer` UUIDs as they are before the event
    (for a new document, as it would be created): an author may only touch documents they
    are the author of, a reviewer only those they review.
    """
    action = action_for(entity_type, event_type, fields)
    require(username, role, action)
    field = OWNER_FIELD.get(role)
    if entity_type == "document" and field is not None and owners.get(field) != actor_id:
        if event_type == "created":
            raise PermissionDeniedError(
                f"{username} (role {role}) may not create documents for another {role}; "
                f"only as their own {role}"
            )
        raise PermissionDeniedError(
            f"{username} (role {role}) may not {DESCRIPTIONS[action]}: it is not their own; "
            "ask an admin"
        )
