"""PostgreSQL least privilege: what a writer role may do to a vault, granted by its owner.

The role that runs `init` owns the tables and migrates them; a writer role (`init
--writer-role ROLE`) gets exactly what the write commands, status, verify, snapshot and the
audit need: it reads everything, appends to the log, changes projection rows and the
maintained head figures (log_state), draws IDs from the projection's sequences. It owns
nothing, so it cannot drop or alter a table or a trigger, and the triggers refuse it
UPDATE, DELETE and TRUNCATE of events like anyone else.
(Appends serialise through an advisory lock, store.lock_for_append, because LOCK TABLE in
EXCLUSIVE mode would need UPDATE on events.)
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from eventvault import vault_schema
from eventvault.errors import UsageError
from eventvault.tables import events, log_state, projection_for, vault_meta

READ_ONLY = ("alembic_version", vault_meta.name)
# Kept with every append (log_state.py): updated, never deleted. verify checks it against
# the log, so a writer who changes it behind the log's back is found.
MAINTAINED = (log_state.name,)


def grant_writer(connection: Connection, role: str) -> None:
    """Grant `role` what writing and reading the vault need, in the caller's transaction."""
    if connection.dialect.name != "postgresql":
        raise UsageError("--writer-role is for PostgreSQL; SQLite has no database roles")
    if not connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                              {"r": role}).first():
        raise UsageError(f"no database role {role!r}; create it first (CREATE ROLE ... LOGIN)")
    if role == connection.execute(text("SELECT current_user")).scalar_one():
        raise UsageError(f"{role!r} runs init and owns the vault; name another role as writer")
    quote = connection.dialect.identifier_preparer.quote
    who = quote(role)
    database = connection.execute(text("SELECT current_database()")).scalar_one()
    schema_name = connection.execute(text("SELECT current_schema()")).scalar_one()
    statements = [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {who}",
        f"GRANT USAGE ON SCHEMA {quote(schema_name)} TO {who}",
        f"GRANT SELECT, INSERT ON {quote(events.name)} TO {who}",
        *(f"GRANT SELECT ON {quote(name)} TO {who}" for name in READ_ONLY),
        *(f"GRANT SELECT, INSERT, UPDATE ON {quote(name)} TO {who}" for name in MAINTAINED),
    ]
    # The vault's own projection tables: a declared schema's, or the dms ones.
    for table in projection_for(vault_schema.history(connection).catalog).values():
        statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {quote(table.name)} TO {who}")
        sequence = connection.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                      {"t": table.name}).scalar_one()
        if sequence is not None:  # already quoted and schema-qualified by PostgreSQL
            statements.append(f"GRANT USAGE ON SEQUENCE {sequence} TO {who}")
    for statement in statements:
        connection.exec_driver_sql(statement)
