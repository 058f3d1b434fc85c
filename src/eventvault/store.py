"""The event store: appending to the log (locking, chain, concurrency) and reading it back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy import exc as sa_exc

from eventvault import codec, storage
from eventvault.engine import authenticated_principal
from eventvault.errors import ConcurrencyError
from eventvault.events import (
    Event,
    FieldValue,
    chain_hash,
    encode_record,
    event_id,
    event_ids,
    now_us,
    pack_payload,
)
from eventvault.log_read import Head, read_head, row_to_event
from eventvault.log_state import FoldedEntities, Tracker
from eventvault.tables import events

READ_BATCH = 5000


class NewEvent(NamedTuple):
    """What a command asks to record; the store gives it its seq, time and hash. A
    NamedTuple: one is built per command, and a frozen dataclass costs ~4x more to build."""

    entity_type: str
    entity_id: str
    entity_version: int
    event_type: str
    actor_id: str
    fields: Mapping[str, FieldValue]
    reason: str | None = None
    schema_version: int | None = None  # None: the vault's current one (a schema event: its own)


class Appender:
    """Appends events inside the caller's write transaction, continuing the chain.

    It takes the append lock first (see `lock_for_append`), then reads the head once and
    keeps it in memory. Events are written in batches (`flush`, which the owner of the
    transaction must call before it commits): one executemany instead of a statement per
    event is most of what makes batched commands fast. Every event also updates the state
    digest and counts maintained with the log (`tracker`), saved with each flush.
    """

    FLUSH_EVERY = 1000

    def __init__(self, connection: Connection, known: FoldedEntities | None = None) -> None:
        """`known`: entities earlier transactions folded (log_state.FoldedEntities)."""
        lock_for_append(connection)
        self._connection = connection
        self.head = read_head(connection)
        self.tracker = Tracker(connection, self.head.seq, self.head.hash, known)
        # Recorded in every event beside the claimed actor: who was really authenticated.
        self.principal = authenticated_principal(connection)
        self._pending: list[tuple[Event, bytes]] = []

    def append(self, new: NewEvent) -> Event:
        seq = self.head.seq + 1
        # recorded_at never decreases in seq order, even if the wall clock steps back.
        recorded_at = max(now_us(), self.head.recorded_at)
        payload = pack_payload(new.fields)
        schema_version = new.schema_version or self.tracker.history.catalog.version
        record = encode_record(
            seq, new.entity_type, new.entity_id, new.entity_version, new.event_type,
            schema_version, new.actor_id, new.reason, recorded_at, payload, self.principal,
        )
        digest = chain_hash(self.head.hash, record)
        event = Event(
            seq, new.entity_type, new.entity_id, new.entity_version, new.event_type,
            schema_version, new.actor_id, new.reason, recorded_at, payload, digest,
            self.principal,
        )
        self.tracker.apply(event, new.fields)  # refuses a version the log does not continue
        self._pending.append((event, record))
        self.head = Head(seq, digest, recorded_at)
        if len(self._pending) >= self.FLUSH_EVERY:
            self.flush()
        return event

    def flush(self) -> None:
        """Write the pending events; a version another writer took first is a conflict."""
        if not self._pending:
            return
        try:
            insert_events(self._connection, self._pending)
        except sa_exc.IntegrityError as error:
            if "entity_version" not in str(error.orig):
                raise
            raise ConcurrencyError(
                "another writer changed one of these entities first (its version exists "
                "already); reload and try again"
            ) from None
        self._pending = []
        self.tracker.save()


def lock_for_append(connection: Connection) -> None:
    """Serialise appends so that seq order is commit order (each engine's way: storage/)."""
    storage.for_connection(connection).lock_for_append(connection)


def lock_for_replace(connection: Connection) -> None:
    """Hold off every other transaction on the vault until this one (a replace) commits."""
    storage.for_connection(connection).lock_for_replace(connection)


def insert_events(
    connection: Connection, batch: list[tuple[Event, bytes]], *, bulk: bool = False
) -> None:
    """Events with their canonical records, in one driver call; `bulk` (replay) the engine's
    fastest load, whose errors may bypass SQLAlchemy (so the command path does not use it)."""
    # Unpacked, not read by attribute: a replay builds a million of these rows.
    to_stored, compress_from = codec.to_stored, codec.COMPRESS_FROM
    rows = [
        (seq, event_id(digest), entity_type, entity_id, version, event_type, schema_version,
         actor_id, reason, recorded_at,
         record if len(record) < compress_from else to_stored(record), digest)
        for (seq, entity_type, entity_id, version, event_type, schema_version, actor_id, reason,
             recorded_at, _payload, digest, _principal), record in batch
    ]
    storage.for_connection(connection).insert_events(
        connection, [c.name for c in events.columns], rows, bulk=bulk)


def insert_records(connection: Connection, fields: list[list[Any]], records: list[bytes],
                   hashes: list[bytes]) -> None:
    """A replay's bulk load: events as a package reader verified them (each record's decoded
    fields in `Event` order, its canonical bytes, its chain hash; package.frame_records),
    with the engine's fastest load (see insert_events). No `Event` is built per record."""
    if not fields:
        return
    # The rows zipped from the frame's columns: no Python runs per row.
    columns = list(zip(*fields, strict=False))  # the principal, an 11th field, is not stored
    if max(map(len, records), default=0) >= codec.COMPRESS_FROM:
        records = list(map(codec.to_stored, records))
    rows = list(zip(columns[0], event_ids(hashes), *columns[1:9], records, hashes,
                    strict=True))
    storage.for_connection(connection).insert_events(
        connection, [c.name for c in events.columns], rows, bulk=True)


def stream_rows(connection: Connection, sql: str, parameters: tuple[object, ...] = ()
                ) -> Iterator[tuple[Any, ...]]:
    """Rows of a plain SQL query straight from the driver, streamed in batches.

    For the bulk readers (snapshot), where SQLAlchemy's per-row Result machinery cost as much
    as the database itself. `?` in `sql` is the parameter marker on every engine.
    """
    return storage.for_connection(connection).stream_rows(
        connection.connection.driver_connection, sql, parameters)


def read_events(
    connection: Connection, after_seq: int = 0, until_seq: int | None = None
) -> Iterator[Event]:
    """Every event after `after_seq` (up to `until_seq`) in seq order, streamed in batches."""
    query = (select(events.c.record, events.c.hash).where(events.c.seq > after_seq)
             .order_by(events.c.seq))
    if until_seq is not None:
        query = query.where(events.c.seq <= until_seq)
    result = connection.execute(query, execution_options={"yield_per": READ_BATCH})
    for row in result:
        yield row_to_event(row)
