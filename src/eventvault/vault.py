"""The vault: one database holding the event log and its projection, and what you can ask of it.

This is the library's front door; the CLI is a thin layer over it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, select

from eventvault import engine as engines
from eventvault import (
    log_read,
    permissions,
    projection_read,
    schema,
    schema_apply,
    storage,
    store,
    values,
    vault_schema,
    vault_tables,
)
from eventvault.catalog import SCHEMA_ENTITY, SCHEMA_TYPE, compile_schema, schema_fields
from eventvault.db_errors import connection_errors
from eventvault.domain import Commands
from eventvault.entities import Actor
from eventvault.entity_commands import EntityCommands
from eventvault.errors import ConcurrencyError, NotAVaultError, PermissionDeniedError, UsageError
from eventvault.events import CREATED, now_us
from eventvault.fold import StateFold
from eventvault.log_state import FoldedEntities
from eventvault.reader import Reader, as_reader
from eventvault.rebuild import RebuildResult, rebuild_tables
from eventvault.schemadoc import Change, Schema, canonical
from eventvault.status import Status, read_status
from eventvault.system import SYSTEM_ACTOR, SYSTEM_ENTITIES, system_uuid, vault_created_reason
from eventvault.tables import events as events_table
from eventvault.tables import projection as tables
from eventvault.tables import projection_for, vault_meta

T = TypeVar("T")
_USERS = tables["user"].name  # the story's users, whom a write names as its actor


class Vault:
    """A vault on one database (`url`: sqlite:///path.db or postgresql://...; None is
    EVENTVAULT_DB or ./eventvault.db). Use it as a context manager, or `close()` it.

    `max_text`: the longest text value a command may store, in UTF-8 bytes (default
    EVENTVAULT_MAX_TEXT, else 64 KiB; values.py)."""

    def __init__(self, url: str | None = None, max_text: int | None = None) -> None:
        self.url = engines.resolve_url(url)
        self.engine: Engine = engines.create(self.url)
        self._file = engines.file_path(self.url)  # None: a server, or memory
        self.max_text = values.max_text_bytes(max_text)
        # What committed write transactions folded: a hot entity's next one folds only its
        # newer events (log_state.FoldedEntities says why that stays the log's truth).
        self._folded = FoldedEntities()

    @functools.cached_property
    def where(self) -> str:
        """The URL without its password, for messages (rendered once: every transaction
        names it)."""
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the vault's database connections."""
        self.engine.dispose()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- connections ---------------------------------------------------------------------

    @contextmanager
    def connect(
        self, *, write: bool = False, create: bool = False, consistent: bool = False,
        bulk: bool = False,
    ) -> Iterator[Connection]:
        """A connection in a transaction that commits when the block ends without error.

        `consistent`: every query of the transaction sees the same snapshot (REPEATABLE READ
        on PostgreSQL; a SQLite read transaction in WAL mode does so anyway).
        `bulk`: one huge write (replay). On SQLite it runs with a rollback journal instead
        of the WAL, which would otherwise receive every page once more (measured: 1.5x
        faster), and a larger page cache; atomicity is the same. WAL mode comes back after.
        That is for a new file only: a live vault's bulk write (replay --replace) stays in
        WAL mode, which its other connections rely on.
        """
        engine_storage = storage.for_url(self.url)
        if not create and self._file is not None and not self._file.exists():
            raise NotAVaultError(f"{self.where}: no such vault; run `eventvault init` first")
        bulk_mode = bulk and engine_storage.bulk_mode_applies(self.url)
        if bulk_mode:
            self.engine.dispose()  # e.g. leaving SQLite's WAL mode needs the only connection
        with connection_errors(self.where) as opened, self.engine.connect() as connection:
            opened.set()
            if bulk_mode:
                engine_storage.enter_bulk_mode(connection)
            if write:
                connection = connection.execution_options(**{engines.WRITE: True})
            if consistent:
                connection = engine_storage.consistent(connection)
            try:
                with connection.begin():
                    if write:
                        engine_storage.begin_write(connection)
                    yield connection
            finally:
                if write:
                    engine_storage.end_write(connection)
                if bulk_mode:
                    engine_storage.leave_bulk_mode(connection)

    @contextmanager
    def reading(self, consistent: bool = False) -> Iterator[Connection]:
        with self.connect(consistent=consistent) as connection:
            schema.require_current(connection, self.where)
            yield connection

    @contextmanager
    def read(self) -> Iterator[Reader]:
        """`reading` as a plain DB-API Reader (reader.py): what `status` and the audit read
        through, on every engine; one snapshot for all their queries (status reads the head
        and the maintained digest apart: under READ COMMITTED a commit between the two
        would pair one commit's head with another's digest)."""
        with self.reading(consistent=True) as connection:
            yield as_reader(connection)

    @contextmanager
    def write(
        self, actor: str = SYSTEM_ACTOR, reason: str | None = None, command: str = "write"
    ) -> Iterator[Commands]:
        """Run domain commands as `actor`; all of them commit together or none does.

        A refused command (PermissionDeniedError) leaves no trace of itself, but the refusal
        is recorded in the audit trail as an `access_denied` event against the actor.
        """
        try:
            with self.connect(write=True) as connection:
                schema.require_current(connection, self.where)
                appender = store.Appender(connection, self._folded)
                commands = Commands(connection, appender, self._actor(connection, actor),
                                    reason, self.max_text)
                yield commands
                commands.flush()
            self._folded.keep(appender.tracker)  # committed
        except PermissionDeniedError:
            self.record_denied(actor, command)
            raise

    def write_retrying(
        self, work: Callable[[Commands], T], actor: str = SYSTEM_ACTOR,
        reason: str | None = None, attempts: int = 3,
    ) -> T:
        """Run `work` in a write transaction; on a ConcurrencyError run it again, afresh.

        `work` must read what it depends on through the Commands it is given, so each
        attempt decides on the current state rather than on what the failed one saw.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.write(actor, reason) as commands:
                    return work(commands)
            except ConcurrencyError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _actor(self, connection: Connection, username: str, *, inactive_ok: bool = False
               ) -> Actor:
        # Plain SQL on the driver's connection: every write transaction begins with this
        # look-up, and a SQLAlchemy select cost a third of an empty transaction's CPU.
        reader = as_reader(connection)
        row = reader.first(
            f"SELECT uuid, username, role, active FROM {_USERS} WHERE username = ?",
            (username,))
        if row is None:
            raise UsageError(f"unknown actor {username!r}; give an existing username with --as")
        actor_id, found_username, role, active = row
        if not active and not inactive_ok:
            raise PermissionDeniedError(f"actor {username!r} is inactive")
        return Actor(actor_id, found_username, role)

    # --- lifecycle -----------------------------------------------------------------------

    def init(self, writer_role: str | None = None, declared: Schema | None = None) -> int:
        """Create or upgrade the schema and any missing system entity. Idempotent.

        `writer_role` (PostgreSQL, MariaDB): a login role or account granted what writing
        and reading need and no ownership (storage/postgresql.py, storage/mariadb.py).
        `declared`: the schema of a new vault (default: the story's dms); a vault that exists
        must already have it. Returns how many system entities were created.
        """
        engine_storage = storage.for_url(self.url)
        if writer_role is not None:  # refused before anything is created where unsupported
            engine_storage.check_writer_roles()
        with self.connect(write=True, create=True) as connection:
            created = self._initialise(connection, declared)
            if writer_role is not None:
                catalog = vault_schema.history(connection).catalog
                engine_storage.grant_writer(connection, writer_role, [
                    table.name for table in projection_for(catalog).values()])
            return created

    def reinit(self, actor: str, command: str = "reinit") -> int:
        """Drop everything, the event log included, then init: the reinit of the story.

        `actor` must name an admin (no default: destroying the log is never implicit).
        One transaction: if anything fails, the old vault is still there.
        """
        with self.connect() as connection:
            if schema.is_vault(connection) and schema.current_revision(connection):
                self.authorize(connection, actor, "vault.reinit", "reinit the vault", command)
        with self.connect(write=True, create=True) as connection:
            kept = None  # the vault starts again with the schema it has now
            if schema.is_vault(connection):
                kept = vault_schema.history(connection).catalog.schema
                vault_tables.drop_vault(connection)
            return self._initialise(connection, kept)

    def _initialise(self, connection: Connection, declared: Schema | None = None) -> int:
        schema.upgrade(connection)
        self._ensure_vault_id(connection)
        actor = Actor(system_uuid("user", SYSTEM_ACTOR), SYSTEM_ACTOR, "admin")
        appender = store.Appender(connection)
        # A new vault's first events bind its id into the chain (system.py).
        reason = vault_created_reason(self.vault_id(connection)) if appender.head.seq == 0 \
            else None
        catalog = appender.tracker.history.catalog
        if declared is not None and canonical(declared) != catalog.canonical:
            if appender.head.seq != 0:
                raise UsageError(
                    f"the vault exists with schema {catalog.schema.name} version "
                    f"{catalog.version}; change it with `eventvault schema apply`")
            # A vault for a declared schema: its tables, and the schema as the log's seq 1.
            catalog = compile_schema(declared)
            vault_tables.use_tables(connection, catalog)
            appender.append(store.NewEvent(
                SCHEMA_TYPE, SCHEMA_ENTITY, 1, CREATED, actor.id, schema_fields(declared),
                reason, schema_version=declared.version))
        commands = Commands(connection, appender, actor, reason)
        created = commands.ensure_system_entities(frozenset(catalog.type_names))
        commands.flush()
        return created

    def rebuild(self, actor: str, command: str = "rebuild") -> RebuildResult:
        """Rebuild the projection tables from the log (admin only): the repair for drift.

        One transaction; the log is untouched; the tables are verified against the fold.
        """
        with self.reading() as connection:
            self.authorize(connection, actor, "vault.rebuild", "rebuild the vault's tables",
                           command)
        with self.connect(write=True) as connection:
            schema.require_current(connection, self.where)
            return rebuild_tables(connection)

    @contextmanager
    def entities(self, actor: str = SYSTEM_ACTOR, reason: str | None = None,
                 command: str = "entity", write: bool = True) -> Iterator[EntityCommands]:
        """The generic entity commands (entity_commands.py) as `actor`, committed together; a
        refused write is recorded as an `access_denied` event, as `write` does."""
        try:
            with self.connect(write=write) as connection:
                schema.require_current(connection, self.where)
                appender = store.Appender(connection, self._folded) if write else None
                history = appender.tracker.history if appender is not None else \
                    vault_schema.history(connection)
                found = EntityCommands(connection, appender, history,
                                 self._actor(connection, actor, inactive_ok=not write), reason,
                                 self.max_text)
                yield found
                found.flush()
            if appender is not None:
                self._folded.keep(appender.tracker)  # committed
        except PermissionDeniedError:
            self.record_denied(actor, command)
            raise

    def schema(self) -> Schema:
        """The schema the vault's log declares (the built-in dms v1 if it declares none)."""
        with self.reading() as connection:
            return vault_schema.history(connection).catalog.schema

    def apply_schema(self, new: Schema, actor: str, reason: str | None = None,
                     command: str = "schema apply") -> Change:
        """Move the vault to a new version of its schema (admin only), recorded in the log;
        the projection tables follow in the same transaction. Refused (SchemaError) with
        every reason when the change would make existing data invalid."""
        with self.reading() as connection:
            self.authorize(connection, actor, "schema.apply", "change the vault's schema",
                           command)
        with self.connect(write=True) as connection:
            schema.require_current(connection, self.where)
            return schema_apply.apply(connection, new, self._actor(connection, actor).id,
                                      reason)

    def authorize(
        self, connection: Connection, actor: str, action: str, description: str, command: str
    ) -> None:
        """Check `actor` may take `action`; a refusal is recorded (as `command`), then raised."""
        found = self._actor(connection, actor)
        try:
            permissions.require(found.username, found.role, action, description)
        except PermissionDeniedError:
            self.record_denied(actor, command)
            raise

    def record_denied(self, actor: str, command: str) -> None:
        """Put a refused attempt on the record, in a transaction of its own."""
        with self.connect(write=True) as connection:
            denied = Commands(connection, store.Appender(connection),
                              self._actor(connection, actor, inactive_ok=True))
            denied.record_access_denied(command)
            denied.flush()

    @staticmethod
    def _ensure_vault_id(connection: Connection) -> None:
        if connection.execute(select(vault_meta.c.value).where(vault_meta.c.key == "vault_id")
                              ).first() is None:
            connection.execute(vault_meta.insert(), [
                {"key": "vault_id", "value": str(uuid.uuid4())},
                {"key": "created_at", "value": str(now_us())},
            ])

    # --- questions -----------------------------------------------------------------------

    def vault_id(self, connection: Connection) -> str:
        return log_read.vault_id(connection)

    def status(self) -> Status:
        """The head and the state digest and counts maintained with the log: read, never
        recomputed (`verify` recomputes them)."""
        with self.read() as reader:
            return read_status(reader)

    def head(self) -> log_read.Head:
        """The last event's seq and chain hash (seq 0 and the genesis hash when none)."""
        with self.reading() as connection:
            return log_read.read_head(connection)

    def export(
        self, at_seq: int | None = None, at: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The logical state, one entity a dict, sorted by type then UUID; no database IDs.

        With `at_seq` (or a time `at`, µs), the state as it was right after that event,
        folded from the log. `progress(entities given, entities in all)` now and then.
        """
        with self.reading() as connection:
            if at is not None:
                found = log_read.seq_at_time(connection, at)
                at_seq = found if at_seq is None else min(at_seq, found)
            head_seq = log_read.read_head(connection).seq
            if at_seq is not None and not 0 < at_seq <= head_seq:
                raise UsageError(f"seq {at_seq} is outside the log (1 to {head_seq})")
            if at_seq is None:
                catalog = vault_schema.history(connection).catalog
                state: Iterator[tuple[str, str, list[Any]]] = projection_read.read_state(
                    connection, catalog, by_uuid=True)
                names_of = catalog.names
                total = sum(projection_read.counts(connection, catalog).values()) if progress else 0
            else:
                fold = StateFold()
                for event in store.read_events(connection, until_seq=at_seq):
                    fold.apply(event)
                live = sorted(fold.live(), key=lambda item: (item[0], item[1]))
                state, total = iter(live), len(live)
                names_of = fold.catalog.names  # the fields as the log declared them then
            given = 0
            for type_name, entity_id, values in state:
                names = names_of[type_name]
                yield {"type": type_name, "uuid": entity_id,
                       "fields": dict(zip(names, values, strict=True))}
                given += 1
                if progress and given % 5000 == 0:
                    progress(given, total)
            if progress:
                progress(given, given)

    def is_empty(self, connection: Connection) -> bool:
        return not schema.is_vault(connection) or log_read.read_head(connection).seq == 0

    def holds_only_system_entities(self, connection: Connection) -> bool:
        """Nothing but what `init` creates: every event is the creation of a system entity.

        Such a vault (freshly initialised or reinitialised) holds no user data, so a replay
        may fill it without --replace: the package brings the same system entities back.
        """
        if not schema.is_vault(connection):
            return True
        expected = {system_uuid(type_name, str(fields[key]))
                    for type_name, key, declarations in SYSTEM_ENTITIES
                    for fields in declarations}
        expected.add(SCHEMA_ENTITY)  # `init --schema` declares the vault's schema first
        held = connection.execute(select(func.count()).select_from(events_table)).scalar_one()
        if held > len(expected):
            return False
        rows = connection.execute(select(events_table.c.entity_id, events_table.c.event_type))
        return all(event_type == CREATED and str(entity_id) in expected
                   for entity_id, event_type in rows)

