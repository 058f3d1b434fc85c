"""`eventvault snapshot`: write the vault's log, or a slice of it, as a verifiable package.

The chain is re-verified while writing, so a tampered log is never packaged as if it were
sound; the records are copied as stored, without being decoded, which is what makes a
snapshot fast.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from eventvault import codec, projection, schema, store
from eventvault.digest import state_digest
from eventvault.errors import IntegrityError, UsageError
from eventvault.events import (
    CREATED,
    DELETED,
    GENESIS_HASH,
    chain_hash,
    decode_record,
    now_us,
)
from eventvault.fold import StateFold
from eventvault.package import (
    FORMAT_VERSION,
    PackageFooter,
    PackageHeader,
    PackageReader,
    PackageWriter,
)
from eventvault.registry import TYPE_NAMES
from eventvault.vault import Vault

CHECKPOINT_EVERY = 100_000  # events between checkpoints (each one a seekable, verified point)


@dataclass(frozen=True)
class SnapshotResult:
    """The package written: its file, its footer (head seq and hash, digest, counts), base."""

    path: Path
    footer: PackageFooter
    base_seq: int
    bytes: int


def snapshot(
    vault: Vault, path: str | os.PathLike[str], *, since: str | os.PathLike[str] | None = None,
    until_seq: int | None = None, at: int | None = None,
    frame_events: int = 4096, connection: Connection | None = None,
    base_head: tuple[str, int, bytes] | None = None,
) -> SnapshotResult:
    """Write a package of the log (up to `until_seq` or time `at`), optionally incremental:
    on the package `since`, or on the (vault id, head seq, head hash) `base_head` of a
    package kept elsewhere (a repository); read in the caller's `connection` when given (a
    replace holds its lock through it)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory; give a file name for the package")
    if target.exists():
        raise UsageError(f"{target} exists already; choose another name or remove it first")
    base = PackageReader(since) if since is not None else None
    with (nullcontext(connection) if connection is not None
          else vault.reading(consistent=True)) as connection:
        head = store.read_head(connection)
        stop = head.seq if until_seq is None else until_seq
        if at is not None:
            stop = min(stop, store.seq_at_time(connection, at))
        if stop < 0 or stop > head.seq:
            raise UsageError(f"seq {stop} is beyond the vault's head (seq {head.seq})")
        base_seq, base_hash = 0, GENESIS_HASH
        if base is not None:
            base_seq, base_hash = base.footer.head_seq, base.footer.head_hash
            if base.header.vault_id != vault.vault_id(connection):
                raise UsageError(f"{since} was written from another vault")
            if base_seq > stop:
                raise UsageError(f"{since} already goes to seq {base_seq}, beyond seq {stop}")
        elif base_head is not None:
            base_vault, base_seq, base_hash = base_head
            if base_vault != vault.vault_id(connection):
                raise UsageError("the base package was written from another vault")
            if base_seq > stop:
                raise UsageError(f"the base package already goes to seq {base_seq}, beyond "
                                 f"seq {stop}; use --full for a package of an earlier point")
        header = PackageHeader(
            format_version=FORMAT_VERSION, schema_revision=schema.head_revision(),
            vault_id=vault.vault_id(connection), base_seq=base_seq, base_hash=base_hash,
            created_at=now_us(),
        )
        with PackageWriter(target, header, frame_events=frame_events) as writer:
            footer = _write_events(connection, writer, base_seq, base_hash, stop, head.seq)
    return SnapshotResult(target, footer, base_seq, target.stat().st_size)


def _write_events(
    connection: Connection, writer: PackageWriter, base_seq: int, base_hash: bytes, stop: int,
    head_seq: int,
) -> PackageFooter:
    """Stream the stored records into the package, checking the chain as they pass.

    The records go in as stored: no event is decoded. Counts are folded from the type
    columns; the state digest at the head is read from the projection, whose counts must
    agree with the log's. A package cut before the head needs the digest at the cut, which
    only a full fold of the events gives: that path is slower.
    """
    fold = StateFold() if stop < head_seq else None
    counts: Counter[str] = Counter({name: 0 for name in TYPE_NAMES})
    previous = GENESIS_HASH
    rows = store.stream_rows(
        connection,
        "SELECT seq, recorded_at, entity_type, event_type, record, hash FROM events "
        "WHERE seq <= ? ORDER BY seq", (stop,),
    )
    expected = 1
    for seq, recorded_at, entity_type, event_type, stored, stored_hash in rows:
        record = codec.from_stored(bytes(stored))
        previous = chain_hash(previous, record)
        if seq != expected or previous != bytes(stored_hash):
            raise IntegrityError(
                f"the vault's hash chain is broken at seq {expected}; run `eventvault verify` "
                "before taking a backup"
            )
        expected += 1
        if event_type == CREATED:
            counts[entity_type] += 1
        elif event_type == DELETED:
            counts[entity_type] -= 1
        if fold is not None:
            fold.apply(decode_record(record, previous))
        if seq <= base_seq:
            if seq == base_seq and previous != base_hash:
                raise IntegrityError(
                    f"the base package's head (seq {base_seq}) is not in this vault's chain"
                )
            continue
        writer.add(seq, recorded_at, record, previous)
        if seq % CHECKPOINT_EVERY == 0 and seq != stop:
            writer.checkpoint(dict(counts), fold.digest() if fold is not None else None)
    if fold is not None:
        return writer.finish(dict(counts), fold.digest())
    if projection.counts(connection) != dict(counts):
        raise IntegrityError(
            "the vault's tables do not match its log (entity counts differ); run "
            "`eventvault verify` before taking a backup"
        )
    return writer.finish(dict(counts), state_digest(projection.read_state(connection)))
