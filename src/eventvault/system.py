"""The system entities `eventvault init` creates, with deterministic UUIDs."""

from __future__ import annotations

import re
import uuid

from eventvault.events import FieldValue

SYSTEM_ACTOR = "system"

# uuid5 namespace for system entities: every init of every installation creates the same
# identities for `user:admin`, `placeholder:...` and so on, so a reinit does not fork them.
SYSTEM_NAMESPACE = uuid.UUID("6f1c1f0e-5a0b-4c1e-9d43-2f6f0e7a9b10")


def system_uuid(type_name: str, natural_key: str) -> str:
    """The deterministic UUID of the system entity `type_name:natural_key`."""
    return str(uuid.uuid5(SYSTEM_NAMESPACE, f"{type_name}:{natural_key}"))

# The vault id is bound into the hash chain: the events of a vault's first `init` carry the
# reason "vault <id> created", so the id in `vault_meta` (or a package header) can be checked
# against the log (docs/FORMAT.md). Vaults created before 0.2 have no such reason.
_VAULT_CREATED = re.compile(r"vault ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
                            r" created\Z")


def vault_created_reason(vault_id: str) -> str:
    return f"vault {vault_id} created"


def bound_vault_id(first_reason: str | None) -> str | None:
    """The vault id the first event binds, or None (a vault from before the binding)."""
    found = _VAULT_CREATED.match(first_reason or "")
    return found.group(1) if found else None

USERS: tuple[dict[str, FieldValue], ...] = (
    {"username": "admin", "email": "admin@localhost", "role": "admin", "active": True},
    {"username": "system", "email": "", "role": "admin", "active": True},
)

# name -> the states a workflow may move to from it.
WORKFLOW_STATES: dict[str, tuple[str, ...]] = {
    "draft": ("in_review",),
    "in_review": ("approved", "changes_requested"),
    "changes_requested": ("in_review",),
    "approved": ("published",),
    "published": ("archived",),
    "archived": (),
}
INITIAL_STATE = "draft"

_PLACEHOLDER_KEYS = (
    "company_name", "company_address", "company_phone", "company_email", "company_website",
    "company_logo", "department", "document_title", "document_number", "document_version",
    "document_date", "document_status", "author_name", "author_email", "reviewer_name",
    "reviewer_email", "approver_name", "approval_date", "effective_date", "expiry_date",
    "review_date", "page_number", "page_count", "confidentiality", "copyright_notice",
    "footer_text", "header_text", "watermark", "revision_history", "distribution_list",
    "signature_block", "current_date",
)
PLACEHOLDERS: tuple[dict[str, FieldValue], ...] = tuple(
    {"key": key, "value": "", "description": f"{key.replace('_', ' ')} placeholder"}
    for key in _PLACEHOLDER_KEYS
)

BACKUP_CONFIGS: tuple[dict[str, FieldValue], ...] = tuple(
    {"name": name, "schedule": schedule, "retention_days": days, "enabled": enabled}
    for name, schedule, days, enabled in (
        ("hourly_incremental", "0 * * * *", 2, True),
        ("daily_full", "0 2 * * *", 30, True),
        ("weekly_full", "0 3 * * 0", 90, True),
        ("monthly_archive", "0 4 1 * *", 365, True),
        ("yearly_archive", "0 5 1 1 *", 3650, True),
        ("documents_only", "30 2 * * *", 30, True),
        ("workflows_only", "45 2 * * *", 30, True),
        ("users_only", "15 2 * * *", 30, True),
        ("audit_log", "0 1 * * *", 2555, True),
        ("pre_upgrade", "", 30, True),
        ("pre_reinit", "", 30, True),
        ("offsite_copy", "0 6 * * *", 180, True),
        ("compliance_export", "0 7 * * 1", 2555, True),
        ("disaster_recovery", "0 0 * * *", 14, False),
    )
)

# (type, natural key field, declarations) in the order init creates them.
SYSTEM_ENTITIES: tuple[tuple[str, str, tuple[dict[str, FieldValue], ...]], ...] = (
    ("user", "username", USERS),
    ("workflow_state", "name", tuple(
        {"name": name, "transitions": " ".join(targets)}
        for name, targets in WORKFLOW_STATES.items()
    )),
    ("placeholder", "key", PLACEHOLDERS),
    ("backup_config", "name", BACKUP_CONFIGS),
)
