"""The state digest and counts maintained with the log, in the same transaction as each append.

A command knows which entities it changes, and the state digest is a sum (digest.py): adding
or removing one entity's hash is an addition or subtraction modulo 2^256. So every append
updates the live counts per type, and every flush of the appended events the digest (once
per entity changed), and they are stored (table `log_state`) with the head (seq, hash)
they belong to. `status` reads them; `snapshot` writes them into a
package's footer; `verify` folds the log and compares. Every value here comes from the log,
never from the projection tables: an entity's current values and version are folded from
its own events (the (entity_id, entity_version) index serves them), so a table changed
behind the log's back can neither skew the digest nor make a command write a wrong version.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventvault import codec, storage, vault_schema
from eventvault.catalog import SCHEMA_ENTITY, SCHEMA_TYPE, schema_from_payload
from eventvault.digest import MODULUS, entity_hash
from eventvault.errors import ConcurrencyError, IntegrityError
from eventvault.events import (
    ACCESS_DENIED,
    CREATED,
    DELETED,
    GENESIS_HASH,
    Event,
    FieldValue,
    decode_record,
    unpack_payload,
)
from eventvault.fold import SchemaHistory, StateFold, entity_values
from eventvault.reader import Reader, as_reader

if TYPE_CHECKING:
    from sqlalchemy import Connection

REPAIR = "run `eventvault verify`, then `eventvault rebuild --as ADMIN`"


@dataclass
class LogState:
    """The log's head and the state after it: digest (as an integer) and live counts."""

    head_seq: int
    head_hash: bytes
    digest: int
    counts: dict[str, int] = field(default_factory=dict)  # per type the log's schema declares

    @property
    def state_digest(self) -> str:
        return f"{self.digest % MODULUS:064x}"


def load(source: Reader | Connection, history: SchemaHistory | None = None
         ) -> LogState | None:
    """The maintained values, None if none are stored. `history`: the vault's, when the
    caller has read it already (its counts start from every type it declares)."""
    reader = as_reader(source)
    row = reader.first("SELECT head_seq, head_hash, state_digest, counts FROM log_state "
                       "WHERE id = 1")
    if row is None:
        return None
    head_seq, head_hash, state_digest, stored_counts = row
    if history is None:
        history = vault_schema.history(reader)
    counts = history.catalog.zero_counts()
    counts.update(json.loads(stored_counts))
    return LogState(int(head_seq), bytes(head_hash), int(state_digest, 16), counts)


def save(connection: Connection, state: LogState) -> None:
    values = (state.head_seq, state.head_hash, state.state_digest,
              json.dumps(state.counts, sort_keys=True))
    if connection.exec_driver_sql(
            _marked(connection, "UPDATE log_state SET head_seq = ?, head_hash = ?, "
                                "state_digest = ?, counts = ? WHERE id = 1"), values
    ).rowcount == 0:
        connection.exec_driver_sql(
            _marked(connection, "INSERT INTO log_state (id, head_seq, head_hash, "
                                "state_digest, counts) VALUES (1, ?, ?, ?, ?)"), values)


def _marked(connection: Connection, sql: str) -> str:
    return storage.for_connection(connection).sql(sql)


def from_fold(fold: StateFold, head_hash: bytes) -> LogState:
    return LogState(fold.last_seq, head_hash, int(fold.digest(), 16), dict(fold.counts))


def compute(source: Reader | Connection) -> LogState:
    """Fold the whole log: what the maintained values must be (an upgrade computes them so)."""
    fold, head_hash = StateFold(), GENESIS_HASH
    with closing(as_reader(source).stream("SELECT record, hash FROM events ORDER BY seq")
                 ) as rows:
        for stored, digest in rows:
            head_hash = bytes(digest)
            fold.apply(decode_record(codec.from_stored(bytes(stored)), head_hash))
    return from_fold(fold, head_hash)


def current(source: Reader | Connection) -> LogState:
    """The maintained values; folded from the log if a vault has none yet (an upgrade made
    outside `eventvault init`)."""
    return load(source) or compute(source)


class Tracker:
    """The maintained state inside one write transaction, updated by every appended event.

    It also knows, for each entity the transaction touched, its values and version as the
    log says (folded from its events on first touch), which is what makes an event's
    entity_version right whatever the projection's `version` column says.
    """

    def __init__(self, connection: Connection, head_seq: int, head_hash: bytes) -> None:
        self._connection = connection
        self.history: SchemaHistory = vault_schema.history(connection)
        found = load(connection, self.history)
        if found is None:
            found = compute(connection)
        elif (found.head_seq, found.head_hash) != (head_seq, head_hash):
            raise IntegrityError(
                f"the vault's maintained state digest is at seq {found.head_seq}, its log at "
                f"seq {head_seq}: the log or the state was changed behind its back; {REPAIR}"
            )
        self.state = found
        self._recompute = False  # a schema event moved every entity of a changed type
        self._cursor = connection.connection.cursor()
        marker = storage.for_connection(connection).marker
        self._by_entity = ("SELECT record, hash FROM events WHERE entity_id = "
                           f"{marker} ORDER BY entity_version")
        # entity UUID -> (type, values or None once deleted, version)
        self._entities: dict[str, tuple[str, list[FieldValue] | None, int]] = {}
        # Entities changed since the last save -> (type, values before the first change): the
        # digest takes each one's old hash out and its new one in once per save, not once
        # per event (a batch's commands often touch the same entity several times).
        self._changed: dict[str, tuple[str, list[FieldValue] | None]] = {}

    def entity(self, type_name: str, entity_id: str) -> tuple[list[FieldValue] | None, int]:
        """(values in schema order or None if not live, version) as the log says."""
        known = self._entities.get(entity_id)
        if known is None:
            values: list[FieldValue] | None = None
            version = 0
            # The driver's own cursor: SQLAlchemy's per-statement cost was most of a batched
            # command's time here.
            self._cursor.execute(self._by_entity, (entity_id,))
            for stored, digest in self._cursor.fetchall():
                event = decode_record(codec.from_stored(bytes(stored)), bytes(digest))
                values, version = _after(self.history, event, values), event.entity_version
            known = self._entities[entity_id] = (type_name, values, version)
        return known[1], known[2]

    def apply(self, event: Event, fields: Mapping[str, FieldValue] | None = None) -> None:
        """Account for an event about to be appended; a wrong version is refused.
        `fields`: its payload's fields as the appender packed them (not unpacked again)."""
        type_name, entity_id = event.entity_type, event.entity_id
        if type_name == SCHEMA_TYPE:
            self._declare(event)
            return
        if event.event_type == CREATED and entity_id not in self._entities:
            # A new entity: a duplicate UUID is refused by the unique (entity_id,
            # entity_version) index when the events are flushed, before any commit.
            before: list[FieldValue] | None = None
            version = 0
        else:
            before, version = self.entity(type_name, entity_id)
        if event.entity_version <= version:  # decided on a stale read
            raise ConcurrencyError(
                f"{type_name} {entity_id} is at version {version} already: another writer "
                "changed it first; reload and try again")
        if event.entity_version != version + 1:
            raise IntegrityError(
                f"{type_name} {entity_id} is at version {version} in the log, not "
                f"{event.entity_version - 1} as the vault's tables say: they have drifted "
                f"from the log; {REPAIR}"
            )
        after = _after(self.history, event, before, fields)
        if event.event_type != ACCESS_DENIED:
            if entity_id not in self._changed:
                self._changed[entity_id] = (type_name, before)
            self.state.counts[type_name] = self.state.counts.get(type_name, 0) + \
                (after is not None) - (before is not None)
        self._entities[entity_id] = (type_name, after, event.entity_version)
        self.state.head_seq, self.state.head_hash = event.seq, event.hash

    def _declare(self, event: Event) -> None:
        """A schema event: later events of this transaction are in its names. Entities of a
        changed type change layout, hence hash: the state is folded afresh at `save`."""
        if event.entity_id != SCHEMA_ENTITY or event.entity_version != self.history.declared + 1:
            raise IntegrityError(f"seq {event.seq}: malformed schema event")
        schema = schema_from_payload(unpack_payload(event.payload), f"seq {event.seq}")
        self.history = self.history.copy()  # the process's cached one stays the log's
        self.history.declare(event.seq, schema, Counter(self.state.counts),
                             first=event.seq == 1)
        self._entities.clear()  # values in the old layout
        self._changed.clear()  # the digest is folded afresh at `save`
        self._recompute = True
        self.state.head_seq, self.state.head_hash = event.seq, event.hash

    def save(self) -> None:
        """Store the state; called after the pending events are written."""
        if self._recompute:
            self.state = compute(self._connection)  # the written events included
            self._recompute = False
        else:
            for entity_id, (type_name, before) in self._changed.items():
                if before is not None:
                    self.state.digest -= entity_hash(type_name, entity_id, before)
                now_type, after, _version = self._entities[entity_id]
                if after is not None:
                    self.state.digest += entity_hash(now_type, entity_id, after)
        self._changed.clear()
        save(self._connection, self.state)


def _after(history: SchemaHistory, event: Event, before: list[FieldValue] | None,
           fields: Mapping[str, FieldValue] | None = None) -> list[FieldValue] | None:
    if event.event_type == DELETED:
        return None
    if event.event_type == ACCESS_DENIED:
        return before
    changes = unpack_payload(event.payload) if fields is None else dict(fields)
    created = event.event_type == CREATED
    if event.schema_version != history.catalog.version:
        changes = history.upcast(event.seq, event.entity_type, event.schema_version, changes,
                                 created)
    return entity_values(history.catalog, event.entity_type, None if created else before,
                         changes)
