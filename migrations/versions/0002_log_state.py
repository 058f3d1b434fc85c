"""The state digest and counts maintained with the log (table `log_state`).

An existing vault gets its values computed from its log during the upgrade, in the upgrade's
transaction, so a vault upgraded by `eventvault init` verifies at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 22:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(length=32).with_variant(mysql.BINARY(32), "mysql",
                                                                        "mariadb"),
                  nullable=False),
        sa.Column("state_digest", sa.String(length=64), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_state")),
    )
    # The fold is the reference semantics of the log: the values are what it gives.
    from eventvault import log_state

    bind = op.get_bind()
    log_state.save(bind, log_state.compute(bind))


def downgrade() -> None:
    op.drop_table("log_state")
