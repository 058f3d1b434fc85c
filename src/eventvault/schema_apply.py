"""`eventvault schema apply`: a vault moved to a new version of its schema, in one transaction.

The change is checked (schemadoc/evolve.py's rules, and no removed type may still have live
entities), the projection tables follow it (new tables, new columns filled with the default
they are added with, renamed columns, dropped empty tables), and a schema event records it
in the log, so a replay reproduces it at the same seq.
"""

from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.schema import CreateColumn

from eventvault import log_state, store
from eventvault.catalog import (
    SCHEMA_ENTITY,
    SCHEMA_TYPE,
    Catalog,
    compile_schema,
    schema_fields,
)
from eventvault.errors import SchemaError
from eventvault.events import CREATED, UPDATED
from eventvault.schemadoc import Change, Schema, evolve
from eventvault.schemadoc.evolve import origins
from eventvault.tables import projection_for


def apply(connection: Connection, new: Schema, actor_id: str, reason: str | None = None
          ) -> Change:
    """Move the vault to `new` in the caller's write transaction (see the module)."""
    appender = store.Appender(connection)  # the append lock first: no write slips between
    known = appender.tracker.history
    old = known.catalog
    change = evolve(old.schema, new)
    if change.empty and old.schema == new:
        return change
    live = log_state.current(connection).counts
    still = [name for name in change.removed_types if live.get(name)]
    if still:
        raise SchemaError(
            "schema version " f"{new.version} removes {', '.join(still)}, which still "
            f"{'has' if len(still) == 1 else 'have'} live entities "
            f"({', '.join(f'{live[n]} {n}' for n in still)}); delete them first")
    catalog = compile_schema(new)
    _alter_tables(connection, old, catalog)
    appender.append(store.NewEvent(
        SCHEMA_TYPE, SCHEMA_ENTITY, known.declared + 1,
        CREATED if known.declared == 0 else UPDATED, actor_id, schema_fields(new), reason,
        schema_version=new.version))
    appender.flush()
    return change


def _alter_tables(connection: Connection, old: Catalog, new: Catalog) -> None:
    before, after = projection_for(old), projection_for(new)
    quote = connection.dialect.identifier_preparer.quote
    for spec in new.schema.types:
        previous = old.schema.type(spec.name)
        if previous is None:
            after[spec.name].create(connection, checkfirst=True)
            continue
        table = after[spec.name]
        for name, was in origins(previous, spec).items():
            reference = spec.reference(name)
            column = reference.column if reference is not None else name
            if was is None:
                ddl = CreateColumn(table.c[column]).compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {quote(table.name)} ADD COLUMN {ddl}")
                field = spec.field(name)
                if field is not None and field.default is not None:
                    # Existing entities get the default the field is added with (upcast.py).
                    connection.execute(table.update().values({column: field.default}))
            elif was != name:
                old_column = f"{was}_id" if reference is not None else was
                connection.exec_driver_sql(
                    f"ALTER TABLE {quote(table.name)} RENAME COLUMN {quote(old_column)} "
                    f"TO {quote(column)}")
    for spec in old.schema.types:
        if new.schema.type(spec.name) is None:
            before[spec.name].drop(connection)
