"""Reading the log and the vault's id: the head, one entity's events, a time as a seq.

Plain SQL on a Reader (reader.py), so `status` and the audit run them without SQLAlchemy on a
SQLite file; a caller holding a SQLAlchemy connection passes it as it is (as_reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from eventvault import codec
from eventvault.errors import NotAVaultError, UsageError
from eventvault.events import GENESIS_HASH, Event, decode_record, us_to_iso
from eventvault.reader import Reader, as_reader

if TYPE_CHECKING:
    from sqlalchemy import Connection

# An event is read back from its record alone: the other columns are only its index.
EVENT_COLUMNS = "record, hash"


class Head(NamedTuple):
    """The log's last event: a NamedTuple, as the appender makes one per event."""

    seq: int
    hash: bytes
    recorded_at: int


def row_to_event(row: Sequence[object]) -> Event:
    """An Event from a row of EVENT_COLUMNS."""
    stored, digest = row
    return decode_record(codec.from_stored(bytes(stored)), bytes(digest))  # type: ignore[arg-type]


def read_head(source: Reader | Connection) -> Head:
    row = as_reader(source).first(
        "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1")
    if row is None:
        return Head(0, GENESIS_HASH, 0)
    seq, digest, recorded_at = row
    return Head(int(seq), bytes(digest), int(recorded_at))


def vault_id(source: Reader | Connection) -> str:
    reader = as_reader(source)
    found = reader.scalar(f"SELECT {reader.quote('value')} FROM vault_meta "
                          f"WHERE {reader.quote('key')} = ?", ("vault_id",))
    if found is None:
        raise NotAVaultError("the vault records no vault id (vault_meta); run `eventvault "
                             "init` to complete it")
    return str(found)


def entity_events(source: Reader | Connection, entity_id: str) -> list[Event]:
    """One entity's events in seq order (the (entity_id, entity_version) index)."""
    return [row_to_event(row) for row in as_reader(source).rows(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_id = ? ORDER BY seq", (entity_id,))]


def first_seq_from(source: Reader | Connection, moment: int) -> int | None:
    """The first seq recorded at or after `moment`, None if nothing was.

    Two index look-ups on recorded_at, never a walk of the log.
    """
    reader = as_reader(source)
    at = reader.scalar("SELECT recorded_at FROM events WHERE recorded_at >= ? "
                       "ORDER BY recorded_at LIMIT 1", (moment,))
    if at is None:
        return None
    return int(reader.scalar("SELECT min(seq) FROM events WHERE recorded_at = ?", (at,)))


def last_seq_until(source: Reader | Connection, moment: int) -> int:
    """The last seq recorded at or before `moment`, 0 if nothing was."""
    reader = as_reader(source)
    at = reader.scalar("SELECT recorded_at FROM events WHERE recorded_at <= ? "
                       "ORDER BY recorded_at DESC LIMIT 1", (moment,))
    if at is None:
        return 0
    return int(reader.scalar("SELECT max(seq) FROM events WHERE recorded_at = ?", (at,)))


def seq_at_time(source: Reader | Connection, moment: int) -> int:
    """Like last_seq_until, but a time before the first event is an error, not seq 0."""
    found = last_seq_until(source, moment)
    if found == 0:
        raise UsageError(
            f"{us_to_iso(moment)} is before the vault's first event; nothing existed yet"
        )
    return found
