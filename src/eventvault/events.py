"""The event: its canonical encoding, its place in the hash chain, and event times.

The canonical encoding of an event is one msgpack array (see docs/FORMAT.md):

    [seq, entity_type, entity_id, entity_version, event_type, schema_version,
     actor_id, reason, recorded_at, payload(, principal)]

`principal` (since eventvault 0.2) is who was authenticated when the event was recorded, as
opposed to `actor_id`, the user the command claimed to act as (`--as`): a map such as
`{"os": "alice", "db": "app_writer"}`. Records written before it have 10 elements and no
principal; their bytes, and so their hashes, are unchanged.

`payload` is itself canonical msgpack (a map with sorted keys) carried as bytes, so the
database row, the package record and the hash input are the same bytes everywhere.
`hash[n] = SHA-256(hash[n-1] || canonical(event n))`, starting from 32 zero bytes. An
event's `event_id` is the first 16 bytes of its hash in UUID form: a content address, like a
git commit id, that needs no storage of its own in packages.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgpack

from eventvault.errors import UsageError

GENESIS_HASH = bytes(32)

# Event types. `transitioned` is a workflow's domain event; `access_denied` records a refused
# attempt against the actor's own user entity and changes no field.
CREATED, UPDATED, DELETED = "created", "updated", "deleted"
TRANSITIONED, ACCESS_DENIED = "transitioned", "access_denied"
EVENT_TYPES = (CREATED, UPDATED, DELETED, TRANSITIONED, ACCESS_DENIED)

FieldValue = str | int | bool | None
# Who was authenticated: "os" (the user running the command), "db" (the database's
# session_user, on engines that have one). Canonical: keys sorted.
Principal = dict[str, str]


class Event(NamedTuple):
    """One immutable event. A NamedTuple: replay builds millions, and a frozen dataclass
    costs several times more to construct."""

    seq: int
    entity_type: str
    entity_id: str
    entity_version: int
    event_type: str
    schema_version: int
    actor_id: str
    reason: str | None
    recorded_at: int  # microseconds since the Unix epoch, UTC
    payload: bytes  # canonical msgpack map
    hash: bytes
    principal: Principal | None = None  # absent in records written before eventvault 0.2

    @property
    def event_id(self) -> str:
        return event_id(self.hash)

    @property
    def fields(self) -> dict[str, FieldValue]:
        return unpack_payload(self.payload)

    def record(self) -> bytes:
        return encode_record(
            self.seq, self.entity_type, self.entity_id, self.entity_version, self.event_type,
            self.schema_version, self.actor_id, self.reason, self.recorded_at, self.payload,
            self.principal,
        )


# One Packer for every record and payload a command writes: msgpack.packb builds a new one
# per call (as in digest.py). Packing holds the GIL throughout, so threads cannot mix.
_pack = msgpack.Packer(use_bin_type=True).pack


def pack_payload(fields: Mapping[str, FieldValue]) -> bytes:
    return _pack(dict(sorted(fields.items())))


def unpack_payload(payload: bytes) -> dict[str, FieldValue]:
    return msgpack.unpackb(payload, raw=False)


def encode_record(
    seq: int, entity_type: str, entity_id: str, entity_version: int, event_type: str,
    schema_version: int, actor_id: str, reason: str | None, recorded_at: int, payload: bytes,
    principal: Principal | None = None,
) -> bytes:
    fields: list[Any] = [seq, entity_type, entity_id, entity_version, event_type,
                         schema_version, actor_id, reason, recorded_at, payload]
    if principal is not None:  # none: the 10-element record of eventvault 0.1, byte for byte
        fields.append(dict(sorted(principal.items())))
    return _pack(fields)


def chain_hash(previous: bytes, record: bytes) -> bytes:
    return hashlib.sha256(previous + record).digest()


def event_id(event_hash: bytes) -> str:
    """The first 16 bytes of the hash in UUID form."""
    return event_ids((event_hash,))[0]


def event_ids(event_hashes: Iterable[bytes]) -> list[str]:
    """`event_id` of each hash, formatted by hand in one comprehension: a replay does this a
    million times (uuid.UUID costs three times as much, a call per hash a fifth more)."""
    return ["%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])  # noqa: UP031
            for h in map(bytes.hex, event_hashes)]


def iter_records(data: bytes) -> Iterator[tuple[list[Any], bytes]]:
    """Split a buffer of concatenated canonical records into (fields, record bytes)."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1024))
    unpacker.feed(data)
    start = 0
    for item in unpacker:
        end = unpacker.tell()
        yield item, data[start:end]
        start = end


# The types of a record's first ten fields (`tuple(map(type, fields))`): the ways a
# well-formed record can be.
RECORD_TYPES = (
    (int, str, str, int, str, int, str, str, int, bytes),
    (int, str, str, int, str, int, str, type(None), int, bytes),  # no reason given
)


def event_from_record(item: list[Any], event_hash: bytes) -> Event:
    """Build an Event from a decoded record; raises ValueError on a malformed one."""
    if type(item) is not list:
        raise ValueError("record is not a 10- or 11-element array of the right types")
    if len(item) == 11:
        principal = item[10]
        if tuple(map(type, item[:10])) not in RECORD_TYPES or not is_principal(principal):
            raise ValueError("record is not a 10- or 11-element array of the right types")
        return Event(*item[:10], event_hash, principal)
    if tuple(map(type, item)) not in RECORD_TYPES:
        raise ValueError("record is not a 10- or 11-element array of the right types")
    return Event(*item, event_hash)


_STR = frozenset((str,))
# The principals of a log repeat (a few users and roles): the last one found well-formed is
# kept, and a map equal to it is well-formed too (decoded msgpack: a str equals only a str).
_last_principal: list[dict[object, object]] = [{}]


def is_principal(value: object) -> bool:
    # Run for every record a replay reads: equality with the last one, else set operations
    # over the types (measured: 0.83 -> ~0.1 us a record on a replay's package).
    if type(value) is not dict:
        return False
    if value == _last_principal[0]:
        return True
    if {*map(type, value), *map(type, value.values())} <= _STR:
        _last_principal[0] = value
        return True
    return False


def principal_text(principal: Principal | None) -> str | None:
    """A principal for people: `os alice, db app_writer`; None for events without one."""
    if principal is None:
        return None
    return ", ".join(f"{key} {value}" for key, value in sorted(principal.items()))


def decode_record(record: bytes, event_hash: bytes) -> Event:
    """The Event a canonical record encodes; raises ValueError on a malformed one."""
    return event_from_record(msgpack.unpackb(record, raw=False), event_hash)


# --- time -------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_us() -> int:
    return time.time_ns() // 1000


def us_to_iso(us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> int:
    """ISO-8601 to microseconds since the epoch; a time without a zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"malformed time {text!r}; use ISO-8601, e.g. 2026-11-29T13:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
