"""Alembic environment: runs on the connection EventVault hands in, or on EVENTVAULT_DB."""

from __future__ import annotations

from alembic import context

from eventvault import engine as engines
from eventvault.tables import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # EventVault owns the transaction: schema changes commit (or roll back) with the
        # rest of the command, e.g. a replay into an uninitialised database.
        context.configure(connection=connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engines.create(engines.resolve_url(None))
    with engine.connect() as own_connection:
        context.configure(connection=own_connection, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        own_connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
