"""Initial schema: the append-only events log, vault metadata and the projection tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 13:31:27.496322
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from eventvault import storage

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# MariaDB's TEXT and BLOB hold 64 KiB, less than a value or a record may: there they are
# MEDIUMTEXT and LONGBLOB (tables.py); the other engines' DDL is unchanged.
TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
RECORD = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
HASH = sa.LargeBinary(length=32).with_variant(mysql.BINARY(32), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "backup_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("schedule", TEXT, nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_configs")),
    )
    op.create_index(op.f("ix_backup_configs_name"), "backup_configs", ["name"], unique=True)
    op.create_index(op.f("ix_backup_configs_uuid"), "backup_configs", ["uuid"], unique=True)
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=36), nullable=False),
        sa.Column("entity_version", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("schema_version", sa.SmallInteger(), nullable=False),
        sa.Column("actor_id", sa.String(length=36), nullable=False),
        sa.Column("reason", TEXT, nullable=True),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("record", RECORD, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_actor_id_seq"), "events", ["actor_id", "seq"], unique=False)
    op.create_index(
        op.f("ix_events_entity_id_entity_version"),
        "events",
        ["entity_id", "entity_version"],
        unique=True,
    )
    op.create_index(
        op.f("ix_events_entity_type_seq"), "events", ["entity_type", "seq"], unique=False
    )
    op.create_index(op.f("ix_events_event_id"), "events", ["event_id"], unique=True)
    op.create_index(op.f("ix_events_recorded_at"), "events", ["recorded_at"], unique=False)
    op.create_table(
        "placeholders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("key", TEXT, nullable=False),
        sa.Column("value", TEXT, nullable=False),
        sa.Column("description", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placeholders")),
    )
    op.create_index(op.f("ix_placeholders_key"), "placeholders", ["key"], unique=True)
    op.create_index(op.f("ix_placeholders_uuid"), "placeholders", ["uuid"], unique=True)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("username", TEXT, nullable=False),
        sa.Column("email", TEXT, nullable=False),
        sa.Column("role", TEXT, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_username"), "users", ["username"], unique=True)
    op.create_index(op.f("ix_users_uuid"), "users", ["uuid"], unique=True)
    op.create_table(
        "vault_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_vault_meta")),
    )
    op.create_table(
        "workflow_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", TEXT, nullable=False),
        sa.Column("transitions", TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_states")),
    )
    op.create_index(op.f("ix_workflow_states_name"), "workflow_states", ["name"], unique=True)
    op.create_index(op.f("ix_workflow_states_uuid"), "workflow_states", ["uuid"], unique=True)
    op.create_table(
        "backup_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("note", TEXT, nullable=False),
        sa.Column("config_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["config_id"],
            ["backup_configs.id"],
            name=op.f("fk_backup_jobs_config_id_backup_configs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backup_jobs")),
    )
    op.create_index(op.f("ix_backup_jobs_config_id"), "backup_jobs", ["config_id"], unique=False)
    op.create_index(op.f("ix_backup_jobs_uuid"), "backup_jobs", ["uuid"], unique=True)
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", TEXT, nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_documents_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name=op.f("fk_documents_reviewer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_author_id"), "documents", ["author_id"], unique=False)
    op.create_index(op.f("ix_documents_reviewer_id"), "documents", ["reviewer_id"], unique=False)
    op.create_index(op.f("ix_documents_uuid"), "documents", ["uuid"], unique=True)
    op.create_table(
        "restore_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", TEXT, nullable=False),
        sa.Column("note", TEXT, nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("backup_job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["backup_job_id"],
            ["backup_jobs.id"],
            name=op.f("fk_restore_jobs_backup_job_id_backup_jobs"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_restore_jobs_requested_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_restore_jobs")),
    )
    op.create_index(
        op.f("ix_restore_jobs_backup_job_id"), "restore_jobs", ["backup_job_id"], unique=False
    )
    op.create_index(
        op.f("ix_restore_jobs_requested_by_id"), "restore_jobs", ["requested_by_id"], unique=False
    )
    op.create_index(op.f("ix_restore_jobs_uuid"), "restore_jobs", ["uuid"], unique=True)
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("current_state_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_workflows_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["current_state_id"],
            ["workflow_states.id"],
            name=op.f("fk_workflows_current_state_id_workflow_states"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_workflows_document_id_documents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_index(op.f("ix_workflows_assignee_id"), "workflows", ["assignee_id"], unique=False)
    op.create_index(
        op.f("ix_workflows_current_state_id"), "workflows", ["current_state_id"], unique=False
    )
    op.create_index(op.f("ix_workflows_document_id"), "workflows", ["document_id"], unique=False)
    op.create_index(op.f("ix_workflows_uuid"), "workflows", ["uuid"], unique=True)
    _create_append_only_guard()


def downgrade() -> None:
    _drop_append_only_guard()
    _drop_index(op.f("ix_workflows_uuid"), table_name="workflows")
    _drop_index(op.f("ix_workflows_document_id"), table_name="workflows")
    _drop_index(op.f("ix_workflows_current_state_id"), table_name="workflows")
    _drop_index(op.f("ix_workflows_assignee_id"), table_name="workflows")
    op.drop_table("workflows")
    _drop_index(op.f("ix_restore_jobs_uuid"), table_name="restore_jobs")
    _drop_index(op.f("ix_restore_jobs_requested_by_id"), table_name="restore_jobs")
    _drop_index(op.f("ix_restore_jobs_backup_job_id"), table_name="restore_jobs")
    op.drop_table("restore_jobs")
    _drop_index(op.f("ix_documents_uuid"), table_name="documents")
    _drop_index(op.f("ix_documents_reviewer_id"), table_name="documents")
    _drop_index(op.f("ix_documents_author_id"), table_name="documents")
    op.drop_table("documents")
    _drop_index(op.f("ix_backup_jobs_uuid"), table_name="backup_jobs")
    _drop_index(op.f("ix_backup_jobs_config_id"), table_name="backup_jobs")
    op.drop_table("backup_jobs")
    _drop_index(op.f("ix_workflow_states_uuid"), table_name="workflow_states")
    _drop_index(op.f("ix_workflow_states_name"), table_name="workflow_states")
    op.drop_table("workflow_states")
    op.drop_table("vault_meta")
    _drop_index(op.f("ix_users_uuid"), table_name="users")
    _drop_index(op.f("ix_users_username"), table_name="users")
    op.drop_table("users")
    _drop_index(op.f("ix_placeholders_uuid"), table_name="placeholders")
    _drop_index(op.f("ix_placeholders_key"), table_name="placeholders")
    op.drop_table("placeholders")
    _drop_index(op.f("ix_events_recorded_at"), table_name="events")
    _drop_index(op.f("ix_events_event_id"), table_name="events")
    _drop_index(op.f("ix_events_entity_type_seq"), table_name="events")
    _drop_index(op.f("ix_events_entity_id_entity_version"), table_name="events")
    _drop_index(op.f("ix_events_actor_id_seq"), table_name="events")
    op.drop_table("events")
    _drop_index(op.f("ix_backup_configs_uuid"), table_name="backup_configs")
    _drop_index(op.f("ix_backup_configs_name"), table_name="backup_configs")
    op.drop_table("backup_configs")


# The log is append-only in the database itself, not only by convention: any UPDATE or
# DELETE of an event (and TRUNCATE where the engine can catch it) is rejected by a trigger,
# each engine's own (storage/, `append_only_guard`).


def _drop_index(name: str, table_name: str) -> None:
    # Each index dropped here goes before its table. InnoDB refuses to drop a foreign key's
    # index, and DROP TABLE removes every index with the table anyway.
    if storage.for_connection(op.get_bind()).drops_foreign_key_indexes:
        op.drop_index(name, table_name=table_name)


def _create_append_only_guard() -> None:
    bind = op.get_bind()
    for statement in storage.for_connection(bind).append_only_guard():
        op.execute(statement)


def _drop_append_only_guard() -> None:
    bind = op.get_bind()
    for statement in storage.for_connection(bind).drop_append_only_guard():
        op.execute(statement)
