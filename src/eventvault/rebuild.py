"""`eventvault rebuild`: the projection tables rebuilt from the log, the repair for drift.

In the caller's one write transaction, holding the append lock: the log is read and its
chain checked, folded, every projection row deleted and written again from the fold (new
integer IDs: the tables are a projection, only UUIDs are identities), the tables read back
and compared with the fold entity by entity (versions included), and the maintained state
digest and counts set from the fold. The log itself is never written. Any failure rolls it
all back.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass

from sqlalchemy import Connection

from eventvault import codec, log_state, projection, storage, store, vault_schema
from eventvault.errors import IntegrityError
from eventvault.events import GENESIS_HASH, chain_hash, decode_record
from eventvault.fold import StateFold
from eventvault.tables import projection_for


@dataclass(frozen=True)
class RebuildResult:
    head_seq: int
    state_digest: str
    counts: dict[str, int]
    differences: int  # where the tables differed from the log before the rebuild


def rebuild_tables(connection: Connection) -> RebuildResult:
    # Before the lock: on MariaDB a column's repair is DDL, which commits (and so unlocks).
    catalog = vault_schema.history(connection).catalog
    storage.for_connection(connection).fit_columns(
        connection, list(projection_for(catalog).values()))
    store.lock_for_append(connection)
    fold, previous, expected = StateFold(), GENESIS_HASH, 1
    with closing(store.stream_rows(
            connection, "SELECT seq, record, hash FROM events ORDER BY seq")) as rows:
        for seq, stored, stored_hash in rows:
            record = codec.from_stored(bytes(stored))
            previous = chain_hash(previous, record)
            if seq != expected or previous != bytes(stored_hash):
                raise IntegrityError(
                    f"the vault's log itself is damaged at seq {expected} (see `eventvault "
                    "verify`); rebuild repairs tables from a sound log: restore a package "
                    "instead")
            fold.apply(decode_record(record, previous))
            expected += 1
    drifted = len(projection.differences(connection, fold))
    for table in reversed(projection_for(fold.catalog).values()):  # referring rows first
        connection.exec_driver_sql(f"DELETE FROM {table.name}")
    projection.load_rows(connection, fold.catalog, projection.projection_rows(fold))
    left = projection.differences(connection, fold)
    if left:
        raise IntegrityError(f"the rebuilt tables do not match the log: {left[0]}")
    state = log_state.from_fold(fold, previous)
    log_state.save(connection, state)
    return RebuildResult(state.head_seq, state.state_digest, dict(state.counts), drifted)
