"""The state digest and counts maintained with the log, in the same transaction as each append.

A command knows which entities it changes, and the state digest is a sum (digest.py): adding
or removing one entity's hash is an addition or subtraction modulo 2^256. So every append
updates the live counts per type, and every flush of the appended events the digest (once
per entity changed), and they are stored (table `log_state`) with the head (seq, hash)
they belong to. `status` reads them; `snapshot` writes them into a
package's footer; `verify` folds the log and compares. Every value here comes from the log,
never from the projection tables: an entity's current values and version are folded from
its own events (the (entity_id, entity_version) index serves them; from the last one an
earlier transaction of the same Vault folded, where the log still holds it), so a table
changed behind the log's back can neither skew the digest nor make a command write a wrong
version.
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

# An entity as the log says: (type, values in schema order or None once deleted, version,
# the hash of its event at that version).
Folded = tuple[str, list[FieldValue] | None, int, bytes]


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


class FoldedEntities:
    """Entities folded by this process's committed write transactions, so that the next
    transaction touching one folds only its newer events: without it, an entity updated
    2,000 times cost 8-28 ms a transaction, its whole history folded again each time.

    An entry is trusted only where the log still holds its last event: the same hash at the
    same version. A hash chains the whole log before it, so that proves every earlier event
    unchanged; a replace, a reinit or a restore to an earlier point shows another hash or
    none, and the entity is folded afresh. Entries are in the layout of one schema (its
    hash); values are never changed in place (entity_values makes new lists).
    """

    LIMIT = 100_000  # entries kept; past it the cache starts again (memory stays bounded)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, Folded]] = {}  # entity -> (schema hash, entity)

    def get(self, entity_id: str, schema_hash: str) -> Folded | None:
        found = self._entries.get(entity_id)
        return found[1] if found is not None and found[0] == schema_hash else None

    def keep(self, tracker: Tracker) -> None:
        """After `tracker`'s transaction committed: what it folded and appended."""
        if len(self._entries) > self.LIMIT:
            self._entries = {}
        schema_hash = tracker.history.catalog.hash
        for entity_id, folded in tracker.folded().items():
            self._entries[entity_id] = (schema_hash, folded)


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

    def __init__(self, connection: Connection, head_seq: int, head_hash: bytes,
                 known: FoldedEntities | None = None) -> None:
        self._connection = connection
        self._known = known
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
        self._by_entity = ("SELECT entity_version, record, hash FROM events WHERE entity_id "
                           f"= {marker} AND entity_version >= {marker} ORDER BY entity_version")
        self._entities: dict[str, Folded] = {}
        # Entities changed since the last save -> (type, values before the first change): the
        # digest takes each one's old hash out and its new one in once per save, not once
        # per event (a batch's commands often touch the same entity several times).
        self._changed: dict[str, tuple[str, list[FieldValue] | None]] = {}

    def entity(self, type_name: str, entity_id: str) -> tuple[list[FieldValue] | None, int]:
        """(values in schema order or None if not live, version) as the log says."""
        known = self._entities.get(entity_id)
        if known is None:
            known = self._entities[entity_id] = self._fold(type_name, entity_id)
        return known[1], known[2]

    def _fold(self, type_name: str, entity_id: str) -> Folded:
        """The entity from its events: from the last one an earlier transaction folded, if
        the log still holds it (FoldedEntities), else from its first."""
        start = None if self._known is None else \
            self._known.get(entity_id, self.history.catalog.hash)
        # The driver's own cursor: SQLAlchemy's per-statement cost was most of a batched
        # command's time here.
        self._cursor.execute(self._by_entity, (entity_id, 0 if start is None else start[2]))
        rows = self._cursor.fetchall()
        if start is not None:
            if rows and rows[0][0] == start[2] and bytes(rows[0][2]) == start[3]:
                _type, values, version, last = start
                rows = rows[1:]
            else:  # not this log's any more: from the first event
                self._cursor.execute(self._by_entity, (entity_id, 0))
                rows = self._cursor.fetchall()
                start = None
        if start is None:
            values, version, last = None, 0, b""
        for _version, stored, digest in rows:
            last = bytes(digest)
            event = decode_record(codec.from_stored(bytes(stored)), last)
            values, version = _after(self.history, event, values), event.entity_version
        return type_name, values, version, last

    def folded(self) -> dict[str, Folded]:
        """The entities this transaction folded or appended to, as the log says (once the
        transaction commits)."""
        return {entity_id: folded for entity_id, folded in self._entities.items()
                if folded[2] > 0}

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
        self._entities[entity_id] = (type_name, after, event.entity_version, event.hash)
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
                now_type, after, _version, _hash = self._entities[entity_id]
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
