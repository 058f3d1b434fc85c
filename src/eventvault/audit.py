"""Audit queries: one entity's history, what an actor did, the log filtered, an entity as of a time.

Every answer comes from the event log; the projection serves only as a fast index of the
names that are live now. So a deleted entity keeps its whole history, and a vault restored
from a package (same events, same seqs) answers exactly as the original.

What keeps each query fast on a vault of a million events:
- one entity's events come through the unique (entity_id, entity_version) index, one actor's
  through (actor_id, seq), one type's through (entity_type, seq);
- a time becomes a seq first (two probes of the recorded_at index, valid because recorded_at
  never decreases in seq order), so a time range never makes a query filter row by row;
- the names an answer shows (usernames, titles, state names) come from per-entity timelines,
  loaded a few hundred entities per query and kept in a bounded cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from eventvault import log_read, vault_schema
from eventvault.errors import EntityAbsentError, IntegrityError, UsageError
from eventvault.events import (
    ACCESS_DENIED,
    CREATED,
    DELETED,
    UPDATED,
    Event,
    FieldValue,
    us_to_iso,
)
from eventvault.log_read import EVENT_COLUMNS, row_to_event
from eventvault.reader import Reader
from eventvault.schemadoc import TypeSpec
from eventvault.system import system_uuid
from eventvault.timeline import Names

if TYPE_CHECKING:
    from eventvault.vault import Vault

DEFAULT_LIMIT = 100

# A reference is shown as the UUID it holds and the name of the entity it points at.
Value = FieldValue | dict[str, str | None]
# A condition on the log's columns, `?` marking where its value goes ("actor_id = ?", id).
Condition = tuple[str, object]


@dataclass(frozen=True, slots=True)
class EntityRef:
    entity_type: str
    entity_id: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One event as the audit shows it: who, when, why, and each field's old and new value."""

    seq: int
    recorded_at: int  # µs since the epoch, UTC
    event_type: str
    entity_type: str
    entity_id: str
    entity_name: str | None  # the entity's name when the event was recorded
    actor_id: str
    actor: str | None  # the actor's username when the event was recorded
    reason: str | None
    changes: dict[str, dict[str, Value]]  # field -> {"old": ..., "new": ...}
    command: str | None = None  # what an access_denied event's actor tried to do
    # Who was authenticated when it was recorded ({"os": ..., "db": ...}), beside `actor`,
    # whom the command claimed to act as; None for events recorded before eventvault 0.2.
    principal: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "recorded_at": us_to_iso(self.recorded_at)}


@dataclass(frozen=True, slots=True)
class History:
    entity_type: str
    entity_id: str
    name: str | None  # its current name, or its last one if it was deleted
    deleted: bool
    events: list[AuditEvent]


@dataclass(frozen=True, slots=True)
class Page:
    """Events in seq order; `next_after` is the seq to continue after, None at the end."""

    events: list[AuditEvent]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class EntityState:
    """One entity's fields as they were at `at`, that is right after the vault's event `seq`."""

    entity_type: str
    entity_id: str
    name: str | None
    at: int
    seq: int
    version: int
    changed_seq: int  # the entity's last event up to then, when and by whom
    changed_at: int
    changed_by: str | None
    fields: dict[str, Value]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "at": us_to_iso(self.at), "changed_at": us_to_iso(self.changed_at)}


# --- the queries ------------------------------------------------------------------------

@contextmanager
def _reading(source: Vault | Reader) -> Iterator[Reader]:
    """The caller's Reader as it is, or one read transaction of the vault."""
    if isinstance(source, Reader):
        yield source
    else:
        with source.read() as reader:
            yield reader


def _names(reader: Reader) -> Names:
    """Timelines in the names of the vault's current schema (old events upcast)."""
    return Names(reader, vault_schema.history(reader))


def history(source: Vault | Reader, ref: str) -> History:
    """Every event of one entity in seq order, a deleted one included."""
    with _reading(source) as reader:
        target = resolve_ref(reader, ref)
        log = _entity_log(reader, target)
        names = _names(reader)
        names.seed(target.entity_id, target.entity_type, log)
        names.prefetch(log)
        return History(
            target.entity_type, target.entity_id,
            names.name_at(target.entity_id, log[-1].seq),
            log[-1].event_type == DELETED,
            [describe(event, names) for event in log],
        )


def actor_events(
    source: Vault | Reader, username: str, *, since: int | None = None,
    until: int | None = None, after: int = 0, limit: int = DEFAULT_LIMIT,
) -> Page:
    """What one actor did (a user deleted since included), one page in seq order."""
    with _reading(source) as reader:
        actor = resolve_user(reader, username)
        return _page(reader, [("actor_id = ?", actor.entity_id)], since, until, after, limit)


def log(
    source: Vault | Reader, *, type_name: str | None = None, actor: str | None = None,
    since: int | None = None, until: int | None = None, after: int = 0,
    limit: int = DEFAULT_LIMIT,
) -> Page:
    """The event log filtered by entity type, actor and time, one page in seq order."""
    with _reading(source) as reader:
        conditions: list[Condition] = []
        if type_name is not None:
            conditions.append(("entity_type = ?", _spec(reader, type_name).name))
        if actor is not None:
            conditions.append(("actor_id = ?", resolve_user(reader, actor).entity_id))
        return _page(reader, conditions, since, until, after, limit)


def as_of(source: Vault | Reader, ref: str, at: int) -> EntityState:
    """One entity's fields at a moment, folded from its events up to that moment.

    A moment before its creation or after its deletion is an EntityAbsentError saying
    which, never an empty answer.
    """
    with _reading(source) as reader:
        target = resolve_ref(reader, ref)
        log = _entity_log(reader, target)
        names = _names(reader)
        timeline = names.seed(target.entity_id, target.entity_type, log)
        cut = log_read.last_seq_until(reader, at)
        state = timeline.at(cut)
        upto = [event for event in log if event.seq <= cut]
        if state is None:
            name = names.name_at(target.entity_id, cut)
            label = f"{target.entity_type} {name!r}" if name else str(target.entity_id)
            if not upto:
                raise EntityAbsentError(
                    f"{label} did not exist yet at {us_to_iso(at)}: it was created at "
                    f"{us_to_iso(log[0].recorded_at)} (seq {log[0].seq}); ask for a later time"
                )
            gone = upto[-1]
            raise EntityAbsentError(
                f"{label} no longer existed at {us_to_iso(at)}: "
                f"{names.name_at(gone.actor_id, gone.seq) or gone.actor_id} deleted it at "
                f"{us_to_iso(gone.recorded_at)} (seq {gone.seq}); ask for an earlier time"
            )
        last = upto[-1]
        names.prefetch([last])
        return EntityState(
            target.entity_type, target.entity_id, names.name_at(target.entity_id, cut), at, cut,
            last.entity_version, last.seq, last.recorded_at,
            names.name_at(last.actor_id, last.seq),
            {name: show(names, target.entity_type, name, value, cut)
             for name, value in state.items()},
        )


# --- references: REF and usernames to entities -------------------------------------------

def resolve_ref(reader: Reader, ref: str) -> EntityRef:
    """An entity by UUID, `type:UUID`, `type:name` or plain username, deleted ones included.

    A name is looked up among live entities first; an entity deleted since is found through
    its events (the most recent one to have carried that name).
    """
    text = ref.strip()
    type_name: str | None = None
    key = text
    if not text or text.endswith(":"):
        raise UsageError(f"empty reference {ref!r}: give a UUID, TYPE:NAME or a username")
    if not _is_uuid(text):
        type_name, colon, rest = text.partition(":")
        if colon:
            _spec(reader, type_name)  # an unknown type: a UsageError naming the known
            key = rest
        else:
            type_name, key = "user", text  # a plain word is a username
    if _is_uuid(key):
        entity_id = str(uuid.UUID(key))
        found = _type_of(reader, entity_id)
        if found is None:
            raise UsageError(f"unknown entity {ref!r}: no event in this vault is about {entity_id}")
        if type_name is not None and found != type_name:
            raise UsageError(f"{ref!r}: {entity_id} is a {found}, not a {type_name}")
        return EntityRef(found, entity_id)
    assert type_name is not None
    return EntityRef(type_name, _find_by_name(reader, type_name, key))


def _spec(reader: Reader, type_name: str) -> TypeSpec:
    """A type of the vault's own schema; an unknown one is a UsageError naming the known."""
    schema = vault_schema.history(reader).catalog.schema
    found = schema.type(type_name)
    if found is None:
        raise UsageError(f"unknown entity type {type_name!r}; known types: "
                         f"{', '.join(schema.type_names)}")
    return found


def resolve_user(reader: Reader, username: str) -> EntityRef:
    found = resolve_ref(reader, username)
    if found.entity_type != "user":
        raise UsageError(f"{username!r} is a {found.entity_type}, not a user")
    return found


def _find_by_name(reader: Reader, type_name: str, key: str) -> str:
    names = _names(reader)
    field = names.name_field(type_name)
    spec = _spec(reader, type_name)
    if not field or spec.field(field) is None:
        raise UsageError(f"a {type_name} has no name to find it by; give its UUID")
    # The projection table of the type; a plain field's column bears the field's name.
    live = reader.rows(f"SELECT uuid FROM {reader.quote(spec.table)} "
                       f"WHERE {reader.quote(field)} = ? LIMIT 2", (key,))
    if len(live) > 1:
        raise UsageError(f"more than one {type_name} has {field} {key!r}; give its UUID")
    if live:
        return str(live[0][0])
    # System entities have deterministic UUIDs: one index probe before any scan.
    if spec.natural_key == (field,):
        system_id = system_uuid(type_name, key)
        if _type_of(reader, system_id) == type_name:
            return system_id
    former = _find_former(reader, names, type_name, field, key)
    if former is None:
        raise UsageError(
            f"unknown {type_name} {key!r}: no {type_name} in this vault has ever had "
            f"{field} {key!r}"
        )
    return former


def _find_former(reader: Reader, names: Names, type_name: str, field: str, key: str
                 ) -> str | None:
    """The entity that last carried a name it no longer has (deleted or renamed).

    Names live inside payloads, which no index reaches, so this walks the type's events
    newest first and stops at the first match. Only names unknown to the projection get
    here; a UUID or a live name never does.
    """
    with closing(reader.stream(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_type = ? "
            "AND event_type IN (?, ?) ORDER BY seq DESC", (type_name, CREATED, UPDATED))
    ) as rows:
        for row in rows:
            event = row_to_event(row)
            if names.fields(event).get(field) == key:  # old events: the field's name now
                return event.entity_id
    return None


def _entity_log(reader: Reader, target: EntityRef) -> list[Event]:
    log = log_read.entity_events(reader, target.entity_id)
    if not log:  # only a projection changed behind the log's back gets here
        raise IntegrityError(
            f"{target.entity_type} {target.entity_id} is in the projection but has no event "
            "in the log; run `eventvault verify`"
        )
    return log


def _type_of(reader: Reader, entity_id: str) -> str | None:
    found = reader.scalar("SELECT entity_type FROM events WHERE entity_id = ? "
                          "ORDER BY entity_version LIMIT 1", (entity_id,))
    return None if found is None else str(found)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) in (32, 36)


# --- time to seq -------------------------------------------------------------------------

def _page(
    reader: Reader, conditions: list[Condition], since: int | None, until: int | None,
    after: int, limit: int,
) -> Page:
    if limit < 1:
        raise UsageError(f"a page holds at least one event, not {limit}")
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since {us_to_iso(since)} is after --until {us_to_iso(until)}")
    # Times become seq bounds here, so the query below walks (actor_id, seq) or
    # (entity_type, seq) from its first row instead of filtering on recorded_at.
    low = after + 1
    if since is not None:
        first = log_read.first_seq_from(reader, since)
        if first is None:
            return Page([], None)
        low = max(low, first)
    conditions = [*conditions, ("seq >= ?", low)]
    if until is not None:
        conditions.append(("seq <= ?", log_read.last_seq_until(reader, until)))
    rows = reader.rows(
        f"SELECT {EVENT_COLUMNS} FROM events "
        f"WHERE {' AND '.join(sql for sql, _value in conditions)} "
        f"ORDER BY seq LIMIT {int(limit) + 1}", tuple(value for _sql, value in conditions))
    found = [row_to_event(row) for row in rows[:limit]]
    names = _names(reader)
    names.prefetch(found)
    described = [describe(event, names) for event in found]
    return Page(described, found[-1].seq if len(rows) > limit else None)


# --- describing events -------------------------------------------------------------------

def describe(event: Event, names: Names) -> AuditEvent:
    """An event with its actor's and entity's names and each field's old and new value."""
    timeline = names.timeline(event.entity_id)
    before = (timeline.at(event.seq - 1) if timeline else None) or {}
    payload = names.fields(event)
    command: str | None = None
    if event.event_type == CREATED:
        after = (timeline.at(event.seq) if timeline else None) or payload
        pairs = {name: (None, value) for name, value in after.items() if value is not None}
    elif event.event_type == DELETED:
        pairs = {name: (value, None) for name, value in before.items() if value is not None}
    elif event.event_type == ACCESS_DENIED:
        # The refused attempt changed nothing; what was attempted is the news.
        pairs, command = {}, str(payload.get("command") or "")
    else:
        pairs = {name: (before.get(name), value) for name, value in payload.items()}
    changes: dict[str, dict[str, Value]] = {
        name: {"old": show(names, event.entity_type, name, old, event.seq),
               "new": show(names, event.entity_type, name, new, event.seq)}
        for name, (old, new) in pairs.items()
    }
    return AuditEvent(
        event.seq, event.recorded_at, event.event_type, event.entity_type, event.entity_id,
        names.name_at(event.entity_id, event.seq), event.actor_id,
        names.name_at(event.actor_id, event.seq), event.reason, changes, command,
        event.principal,
    )


def show(names: Names, type_name: str, field: str, value: FieldValue, seq: int) -> Value:
    """A field value for the audit: a reference becomes its UUID and its name at `seq`."""
    if value is None or field not in names.reference_fields(type_name):
        return value
    return {"uuid": str(value), "name": names.name_at(str(value), seq)}
