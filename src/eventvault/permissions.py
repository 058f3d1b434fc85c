"""Who may do what: the role policy, checked by the domain before anything is written."""

from __future__ import annotations

from eventvault.errors import PermissionDeniedError

# Actions every command maps to; the policy names, for each role, the actions it may take.
# Ownership rules (an author edits only their own documents) are checked by the domain,
# which knows the document; this table says only whether the role may try at all.
POLICY: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "user.create", "user.update", "user.delete", "user.role",
        "document.create", "document.update", "document.delete",
        "workflow.start", "workflow.move", "backup.record", "restore.record",
        "vault.reinit", "vault.replace", "vault.rebuild",
    }),
    "author": frozenset({"document.create", "document.update", "document.delete"}),
    "reviewer": frozenset({"document.update", "workflow.start", "workflow.move"}),
    "viewer": frozenset(),
}


def require(username: str, role: str, action: str, command: str) -> None:
    if action not in POLICY.get(role, frozenset()):
        raise PermissionDeniedError(
            f"{username} (role {role}) may not {command}; ask an admin"
        )
