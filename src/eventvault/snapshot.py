"""`eventvault snapshot`: write the vault's log, or a slice of it, as a verifiable package.

The chain is re-verified while writing, so a tampered log is never packaged as if it were
sound; the records are copied as stored, without being decoded, which is what makes a
snapshot fast.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eventvault import codec, log_read, log_state, schema
from eventvault.catalog import SCHEMA_TYPE
from eventvault.db_errors import url_text
from eventvault.errors import IntegrityError, UsageError
from eventvault.events import (
    CREATED,
    DELETED,
    GENESIS_HASH,
    decode_record,
    now_us,
)
from eventvault.fold import StateFold, declared_counts
from eventvault.package import (
    FORMAT_VERSION,
    PackageFooter,
    PackageHeader,
    PackageReader,
    PackageWriter,
)
from eventvault.reader import Reader, as_reader, sqlite_file
from eventvault.table_check import HELPER_FROM_EVENTS, PendingFigures
from eventvault.vault_read import read_vault

if TYPE_CHECKING:  # SQLAlchemy is not imported by a snapshot of a plain SQLite file
    from sqlalchemy import Connection

    from eventvault.vault import Vault

CHECKPOINT_EVERY = 100_000  # events between checkpoints (each one a seekable, verified point)
PROGRESS_EVERY = 8192  # events between two calls of a progress callback
FRAME_EVENTS = 4096  # events a package frame holds (the last one of a package fewer)
Progress = Callable[[int, int], None]  # (events read, events to read)


@dataclass(frozen=True)
class SnapshotResult:
    """The package written: its file, its footer (head seq and hash, digest, counts), base."""

    path: Path
    footer: PackageFooter
    base_seq: int
    bytes: int
    warnings: list[str] = field(default_factory=list)  # one line each, for stderr


def snapshot(
    vault: Vault, path: str | os.PathLike[str], *, since: str | os.PathLike[str] | None = None,
    until_seq: int | None = None, at: int | None = None,
    frame_events: int = FRAME_EVENTS, connection: Connection | None = None,
    base_head: tuple[str, int, bytes] | None = None, progress: Progress | None = None,
) -> SnapshotResult:
    """Write a package of the log (up to `until_seq` or time `at`), optionally incremental:
    on the package `since`, or on the (vault id, head seq, head hash) `base_head` of a
    package kept elsewhere (a repository); read in the caller's `connection` when given (a
    replace holds its lock through it)."""
    target, base = _target(path, since)
    point = _Point(since, until_seq, at, base_head)
    if connection is not None:  # a replace's: it holds every table locked, so no helper
        return _package(as_reader(connection), None, target, base, point, frame_events,
                        progress)
    with vault.read() as reader:
        return _package(reader, _full_url(vault), target, base, point, frame_events, progress)


def snapshot_of(url: str | None, vault: Callable[[], Vault], path: str | os.PathLike[str],
                *, since: str | os.PathLike[str] | None = None, until_seq: int | None = None,
                at: int | None = None, progress: Progress | None = None) -> SnapshotResult:
    """`snapshot` of the vault at `url` (as `--db` gives it: None is EVENTVAULT_DB or
    ./eventvault.db), the command line's way: a plain SQLite file is read through the
    standard library's sqlite3 (vault_read.py), so the command starts without SQLAlchemy,
    whose import was ~0.3 s of a 1M snapshot's 2.5 s floor; any other URL through `vault()`.
    """
    target, base = _target(path, since)
    point = _Point(since, until_seq, at, None)
    with read_vault(url, vault) as reader:
        helper_url = url_text(url) if sqlite_file(url) is not None else _full_url(vault())
        return _package(reader, helper_url, target, base, point, FRAME_EVENTS, progress)


@dataclass(frozen=True)
class _Point:
    """Where a package starts and ends, as asked (see `snapshot`)."""

    since: str | os.PathLike[str] | None
    until_seq: int | None
    at: int | None
    base_head: tuple[str, int, bytes] | None


def _target(path: str | os.PathLike[str], since: str | os.PathLike[str] | None
            ) -> tuple[Path, PackageReader | None]:
    """The package file to write, refused if it exists; the base package, opened."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory; give a file name for the package")
    if target.exists():
        raise UsageError(f"{target} exists already; choose another name or remove it first")
    return target, PackageReader(since) if since is not None else None


def _full_url(vault: Vault) -> str:
    return vault.url.render_as_string(hide_password=False)


def _package(reader: Reader, helper_url: str | None, target: Path,
             base: PackageReader | None, point: _Point, frame_events: int,
             progress: Progress | None) -> SnapshotResult:
    """The package, read in `reader`'s transaction; the tables' figures by a helper process
    on `helper_url` in a large vault (None: in this transaction)."""
    head = log_read.read_head(reader)
    stop = head.seq if point.until_seq is None else point.until_seq
    if point.at is not None:
        stop = min(stop, log_read.seq_at_time(reader, point.at))
    if stop < 0 or stop > head.seq:
        raise UsageError(f"seq {stop} is beyond the vault's head (seq {head.seq})")
    base_seq, base_hash = 0, GENESIS_HASH
    if base is not None:
        base_seq, base_hash = base.footer.head_seq, base.footer.head_hash
        if base.header.vault_id != log_read.vault_id(reader):
            raise UsageError(f"{point.since} was written from another vault")
        if base_seq > stop:
            raise UsageError(f"{point.since} already goes to seq {base_seq}, beyond seq {stop}")
    elif point.base_head is not None:
        base_vault, base_seq, base_hash = point.base_head
        if base_vault != log_read.vault_id(reader):
            raise UsageError("the base package was written from another vault")
        if base_seq > stop:
            raise UsageError(f"the base package already goes to seq {base_seq}, beyond "
                             f"seq {stop}; use --full for a package of an earlier point")
    header = PackageHeader(
        format_version=FORMAT_VERSION, schema_revision=schema.head_revision(),
        vault_id=log_read.vault_id(reader), base_seq=base_seq, base_hash=base_hash,
        created_at=now_us(),
    )
    warnings: list[str] = []
    # The tables are as large as the vault, however short the package.
    tables = PendingFigures(helper_url, helper=stop == head.seq
                            and head.seq >= HELPER_FROM_EVENTS)
    try:
        with PackageWriter(target, header, frame_events=frame_events) as writer:
            footer = _write_events(reader, writer, base_seq, base_hash, stop, head,
                                   warnings, tables, progress)
    finally:
        tables.cancel()
    return SnapshotResult(target, footer, base_seq, target.stat().st_size, warnings)


def _write_events(
    reader: Reader, writer: PackageWriter, base_seq: int, base_hash: bytes, stop: int,
    head: log_read.Head, warnings: list[str], tables: PendingFigures,
    progress: Progress | None = None,
) -> PackageFooter:
    """Stream the stored records into the package, checking the chain as they pass.

    The records go in as stored: no event is decoded. Counts are folded from the type
    columns; the state digest at the head is the one maintained with the log (log_state.py),
    whose head and counts must agree with what streamed past. The projection tables give
    no figure of the package: they are only compared with it, to warn of drift (their
    figures from `tables`, taken beside this loop in a large vault). A package
    cut before the head, or a vault whose maintained state disagrees with its log, needs a
    full fold of the events: that path is slower.
    """
    kept = log_state.load(reader) if stop == head.seq else None
    usable = kept is not None and (kept.head_seq, kept.head_hash) == (head.seq, head.hash)
    fold = None if usable else StateFold()
    # Counts are per type the log's schema declares at each point (schema events change it).
    counts: Counter[str] = Counter(StateFold().counts)
    declared: bytes | None = None  # the canonical schema the log declares, if any
    previous = GENESIS_HASH
    rows = reader.stream(
        "SELECT seq, recorded_at, entity_type, event_type, record, hash FROM events "
        "WHERE seq <= ? ORDER BY seq", (stop,),
    )
    # The loop runs once per event, so it does as little as it can: records go to the
    # writer a run at a time (up to the end of its frame, a checkpoint or a progress call),
    # and nothing is decoded.
    sha256, from_stored = hashlib.sha256, codec.from_stored
    times: list[int] = []
    records: list[bytes] = []
    hashes: list[bytes] = []
    expected = 1
    next_stop = _next_stop(base_seq, base_seq, stop, writer.room(), progress)
    for seq, recorded_at, entity_type, event_type, stored, stored_hash in rows:
        record = from_stored(stored)
        previous = sha256(previous + record).digest()
        if seq != expected or previous != stored_hash:
            raise IntegrityError(
                f"the vault's hash chain is broken at seq {expected}; run `eventvault verify` "
                "before taking a backup"
            )
        expected += 1
        if entity_type == SCHEMA_TYPE:
            counts, declared = declared_counts(counts, decode_record(record, previous))
        elif event_type == CREATED:
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
        times.append(recorded_at)
        records.append(record)
        hashes.append(previous)
        if seq == next_stop:
            writer.add_run(seq - len(records) + 1, times, records, hashes)
            times, records, hashes = [], [], []
            if progress and seq % PROGRESS_EVERY == 0:
                progress(seq, stop)
            if seq % CHECKPOINT_EVERY == 0 and seq != stop:
                writer.checkpoint(dict(counts), fold.digest() if fold is not None else None)
            next_stop = _next_stop(seq, base_seq, stop, writer.room(), progress)
    if records:  # the log ended before `stop` (read under a consistent snapshot: never)
        writer.add_run(expected - len(records), times, records, hashes)
    if progress:
        progress(stop, stop)
    if fold is not None:
        digest = fold.digest()
    else:
        assert kept is not None
        digest = kept.state_digest
        if kept.counts != dict(counts):  # the maintained state was changed behind its back
            digest = log_state.compute(reader).state_digest
            kept = None
    if stop == head.seq:
        if kept is None or (kept.head_seq, kept.head_hash) != (head.seq, head.hash):
            warnings.append(
                "the vault's maintained state digest disagrees with its log (the package "
                f"holds the log's own); {log_state.REPAIR}")
        found = tables.figures(reader, head)
        if found.counts != dict(counts) or found.digest != digest:
            warnings.append(
                "the vault's tables have drifted from its log (the package holds the log's "
                "state); run `eventvault rebuild --as ADMIN` to rebuild them from the log")
    return writer.finish(dict(counts), digest, declared)


def _next_stop(seq: int, base_seq: int, stop: int, room: int, progress: Progress | None
               ) -> int:
    """The next seq after `seq` where the run of records goes to the writer: the end of its
    frame, a checkpoint, a progress call or the last event, whichever comes first."""
    seq = max(seq, base_seq)
    at = min(seq + room, stop, (seq // CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY)
    if progress:
        at = min(at, (seq // PROGRESS_EVERY + 1) * PROGRESS_EVERY)
    return at

