"""`eventvault snapshot`: write the vault's log, or a slice of it, as a verifiable package.

The package's counts and state digests come from folding the events, not from the
projection: the log is the system of record, so a projection damaged behind the log's back
cannot poison a backup. The chain is re-verified while writing, so a tampered log is never
packaged as if it were sound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from eventvault import schema, store
from eventvault.errors import IntegrityError, UsageError
from eventvault.events import GENESIS_HASH, chain_hash, now_us
from eventvault.fold import StateFold
from eventvault.package import (
    FORMAT_VERSION,
    PackageFooter,
    PackageHeader,
    PackageReader,
    PackageWriter,
)
from eventvault.vault import Vault

CHECKPOINT_EVERY = 100_000  # events between checkpoints (each one a seekable, verified point)


@dataclass(frozen=True)
class SnapshotResult:
    path: Path
    footer: PackageFooter
    base_seq: int
    bytes: int


def snapshot(
    vault: Vault, path: str | os.PathLike[str], *, since: str | os.PathLike[str] | None = None,
    until_seq: int | None = None, at: int | None = None,
    frame_events: int = 4096,
) -> SnapshotResult:
    """Write a package of the log (up to `until_seq` or time `at`), optionally incremental."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory; give a file name for the package")
    if target.exists():
        raise UsageError(f"{target} exists already; choose another name or remove it first")
    base = PackageReader(since) if since is not None else None
    with vault.reading(consistent=True) as connection:
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
        header = PackageHeader(
            format_version=FORMAT_VERSION, schema_revision=schema.head_revision(),
            vault_id=vault.vault_id(connection), base_seq=base_seq, base_hash=base_hash,
            created_at=now_us(),
        )
        with PackageWriter(target, header, frame_events=frame_events) as writer:
            footer = _write_events(connection, writer, base_seq, base_hash, stop)
    return SnapshotResult(target, footer, base_seq, target.stat().st_size)


def _write_events(
    connection: Connection, writer: PackageWriter, base_seq: int, base_hash: bytes, stop: int
) -> PackageFooter:
    fold = StateFold()
    previous = GENESIS_HASH
    for event in store.read_events(connection, until_seq=stop):
        record = event.record()
        previous = chain_hash(previous, record)
        if previous != event.hash:
            raise IntegrityError(
                f"the vault's hash chain is broken at seq {event.seq}; run `eventvault verify` "
                "before taking a backup"
            )
        fold.apply(event)
        if event.seq <= base_seq:
            if event.seq == base_seq and event.hash != base_hash:
                raise IntegrityError(
                    f"the base package's head (seq {base_seq}) is not in this vault's chain"
                )
            continue
        writer.add(event.seq, event.recorded_at, record, event.hash)
        if event.seq % CHECKPOINT_EVERY == 0 and event.seq != stop:
            writer.checkpoint(dict(fold.counts), fold.digest())
    return writer.finish(dict(fold.counts), fold.digest())
