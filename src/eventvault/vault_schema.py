"""A vault's schema as its log declares it: read from the schema events, once per process.

The schema events are few and all about one entity (catalog.SCHEMA_ENTITY), so the
(entity_id, entity_version) index finds them without walking the log; what they declare is
compiled once per process and kept by the hashes of those events.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from eventvault import codec
from eventvault.catalog import SCHEMA_ENTITY, schema_from_payload
from eventvault.events import decode_record, unpack_payload
from eventvault.fold import SchemaHistory
from eventvault.reader import Reader, as_reader

if TYPE_CHECKING:
    from sqlalchemy import Connection

_HISTORIES: dict[tuple[bytes, ...], SchemaHistory] = {}


def history(source: Reader | Connection) -> SchemaHistory:
    """The schemas the vault's log went through (the built-in dms v1 if it declares none)."""
    rows = as_reader(source).rows(
        "SELECT record, hash FROM events WHERE entity_id = ? ORDER BY entity_version",
        (SCHEMA_ENTITY,))
    key = tuple(bytes(digest) for _record, digest in rows)
    found = _HISTORIES.get(key)
    if found is None:
        found = SchemaHistory()
        for stored, digest in rows:
            event = decode_record(codec.from_stored(bytes(stored)), bytes(digest))
            schema = schema_from_payload(unpack_payload(event.payload), f"seq {event.seq}")
            # Removals were checked against live entities when written and by `verify`.
            found.declare(event.seq, schema, Counter(), first=event.seq == 1)
        _HISTORIES[key] = found
    return found
