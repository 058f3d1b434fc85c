"""`eventvault replay`: rebuild a vault from packages, all or nothing, and prove it complete.

One transaction on the target: reset the schema, copy every event (same seq, same hash) and
fold it (the fold checks every reference at that point in time) in one pass, each record
decompressed, decoded and chain-checked once; write the folded state into the projection with
the target's own IDs, then recompute counts and digest from the target's tables and compare
them with the package's (at its head or a checkpoint) and the counts with the fold's; where
the package recorded no state at that seq, the digest with the fold's (_verify). Any
failure rolls the whole transaction back; a file the replay created is removed again. Where
DDL cannot roll back (MariaDB) the vault is built beside the target and swapped in once
checked (_replay_beside).

One process: in 0.2.0 a helper process folded the packages beside the copy, so every record
was read twice (measured side by side at 1M events: 31-33 s of CPU time against 24 s for one
pass, peak memory 498-567 MB against 344 MB; bench/README.md has the figures).
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, inspect

from eventvault import engine as engines
from eventvault import (
    log_read,
    log_state,
    projection,
    projection_read,
    schema,
    storage,
    store,
    vault_schema,
    vault_tables,
)
from eventvault.catalog import Catalog
from eventvault.digest import state_digest
from eventvault.domain import Actor, Commands
from eventvault.errors import (
    EventVaultError,
    IntegrityError,
    PackageError,
    UsageError,
    ValidationError,
)
from eventvault.events import us_to_iso
from eventvault.fold import StateFold
from eventvault.package import PackageReader, open_chain
from eventvault.projection import projection_rows
from eventvault.snapshot import snapshot
from eventvault.tables import events, vault_meta
from eventvault.tables import projection as tables
from eventvault.vault import Vault

Progress = Callable[[int, int], None]  # (events applied, events expected)


@dataclass
class ReplayResult:
    """What a replay restored (or, with dry_run, would have) and what it was checked against."""

    events: int
    head_seq: int
    head_hash: str
    state_digest: str
    counts: dict[str, int]
    verified_against: str
    seconds: float
    dry_run: bool
    safety_snapshot: Path | None = None
    restore_job: str | None = None
    notes: list[str] = field(default_factory=list)


class _DryRunDone(Exception):
    def __init__(self, result: ReplayResult) -> None:
        self.result = result


def replay(
    target: Vault, packages: Sequence[str | os.PathLike[str]], *, replace: bool = False,
    dry_run: bool = False, actor: str | None = None, until_seq: int | None = None,
    at: int | None = None, safety_path: str | os.PathLike[str] | None = None,
    progress: Progress | None = None, command: str = "replay --replace",
) -> ReplayResult:
    """Replay `packages` into `target`; `command` is what a refusal is recorded as.

    `actor` requests the restore (it is recorded as its `restore_job`); `system` if not
    given, but `replace` needs it given, naming an admin: replacing a vault is never implicit.
    """
    started = time.monotonic()
    if not packages:
        raise UsageError("give at least one package to replay")
    if replace and actor is None:
        raise UsageError("replay --replace needs --as USERNAME naming an admin")
    actor = actor or "system"
    readers = open_chain(packages)
    for reader in readers:  # every checksum, before the target is touched at all
        reader.check_frames()
    stop = _stop_seq(readers, until_seq, at)
    path = engines.file_path(target.url)
    existed = path is not None and path.exists()
    replacing = False
    if not dry_run or existed:
        replacing = _check_target(target, replace, actor, command) and not dry_run
    safety: Path | None = None
    try:
        with target.connect(write=True, create=True, bulk=True) as connection, _gc_paused():
            # One transaction holds the vault's write lock from the safety snapshot through
            # the commit of the replacement: a concurrent write either committed before it
            # (and is in the safety snapshot) or waits and lands in the restored vault.
            if not dry_run and schema.is_vault(connection):
                store.lock_for_replace(connection)
                if not target.is_empty(connection) and (
                        replacing or not target.holds_only_system_entities(connection)):
                    if not replacing:  # written to since it was found empty
                        raise ValidationError("the target vault is not empty any more (written "
                                              "to as the replay began); use --replace")
                    safety = _safety_path(safety_path)
                    snapshot(target, safety, connection=connection)
            if storage.for_connection(connection).transactional_ddl:
                result = _replay_into(connection, readers, stop, actor, progress)
            else:
                result = _replay_beside(connection, readers, stop, actor, progress,
                                        swap=not dry_run)
            result.safety_snapshot = safety
            result.seconds = time.monotonic() - started
            if dry_run:
                raise _DryRunDone(result)
        return result
    except _DryRunDone as done:
        done.result.dry_run = True
        return done.result
    except BaseException as error:
        if safety is None or not safety.exists():
            raise
        safety.unlink()  # the target is unchanged: that copy of it is not needed
        if isinstance(error, EventVaultError):
            raise type(error)(f"{error}; the vault is unchanged and its safety snapshot "
                              f"{safety} was removed") from None
        raise
    finally:
        if path is not None and not existed and (dry_run or not _has_events(target)):
            target.close()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)


def _safety_path(given: str | os.PathLike[str] | None) -> Path:
    if given:
        return Path(given)
    return Path(f"eventvault-safety-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}.evpkg")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cycle collector off during the bulk load: it found nothing to free there, yet
    walked the millions of live objects again and again (measured: 3-5 s of 31 s at 1M)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _replay_beside(
    connection: Connection, readers: list[PackageReader], stop: int, actor: str,
    progress: Progress | None, *, swap: bool,
) -> ReplayResult:
    """Where DDL commits by itself (MariaDB), so the target's transaction cannot undo a
    replay: the new vault is built and checked in a database beside the target, then
    swapped in whole (storage: build_beside, swap_in). A failure before the swap leaves the
    target exactly as it was; readers see the old vault or the new one, never half."""
    engine_storage = storage.for_connection(connection)
    with engine_storage.build_beside(connection) as built:
        with Vault(built.render_as_string(hide_password=False)) as beside, \
                beside.connect(write=True, create=True, bulk=True) as building:
            result = _replay_into(building, readers, stop, actor, progress)
        if swap:  # the build committed and its connections are closed: nothing holds it
            engine_storage.swap_in(connection, built, vault_tables.own_tables(connection))
    return result


def _has_events(target: Vault) -> bool:
    try:
        with target.connect() as connection:
            return not target.is_empty(connection)
    except Exception:
        return False


def _stop_seq(readers: list[PackageReader], until_seq: int | None, at: int | None) -> int:
    head = readers[-1].footer.head_seq
    first = readers[0].footer.first_time
    stop = head
    if until_seq is not None:
        if until_seq < 1 or until_seq > head:
            raise UsageError(f"--seq {until_seq} is outside the packages' events (1 to {head})")
        stop = until_seq
    if at is not None:
        if first is None or at < first:
            raise UsageError(
                f"{us_to_iso(at)} is before the first event in the packages "
                f"({us_to_iso(first) if first else 'there are none'}); nothing existed yet"
            )
        stop = min(stop, _seq_at_time(readers, at))
    return stop


def _seq_at_time(readers: list[PackageReader], at: int) -> int:
    """The last seq recorded at or before `at`: the frame index says which frame, and only
    that frame is decoded (through the reader, so its checksum is verified first)."""
    stop = readers[0].header.base_seq
    for reader in readers:
        for info in reader.footer.frames:
            if info.first_time > at:
                return stop
            if info.last_time <= at:
                stop = info.last_seq
                continue
            for event in reader.events(stop_seq=info.last_seq):
                if event.seq >= info.first_seq:
                    if event.recorded_at > at:
                        return stop
                    stop = event.seq
            return stop
    return stop


def _check_target(target: Vault, replace: bool, actor: str, command: str) -> bool:
    """Refuse a target that holds anything unless --replace (by an actor allowed to replace
    the vault); True when a vault with events is to be replaced."""
    path = engines.file_path(target.url)
    if path is not None and not path.exists():
        return False
    with target.connect() as connection:
        if not schema.is_vault(connection):
            foreign = inspect(connection).get_table_names()
            if foreign:
                raise ValidationError(
                    f"target {target.where} holds tables that are not a vault's "
                    f"({', '.join(sorted(foreign)[:5])}); give an empty database"
                )
            return False
        if target.is_empty(connection):
            return False
        # Only what init creates is no user data: it needs no --replace (with --replace it is
        # replaced as any vault is, safety snapshot included).
        if not replace and target.holds_only_system_entities(connection):
            return False
        schema.require_current(connection, target.where)
        counts = projection_read.counts(connection, vault_schema.history(connection).catalog)
    if not replace:
        held = ", ".join(f"{n} {t}s" for t, n in counts.items() if n)
        raise ValidationError(
            f"target vault is not empty ({held}); use --replace --as ADMIN to restore over it"
        )
    with target.connect() as connection:
        target.authorize(connection, actor, "vault.replace", "replace the vault by a replay",
                         command)
    return True


def _actor(connection: Connection, username: str) -> Actor:
    users = tables["user"]
    row = connection.execute(users.select().where(users.c.username == username)).first()
    if row is None:
        raise UsageError(f"unknown actor {username!r}: --as must name a user of the vault")
    return Actor(row.uuid, row.username, row.role)


def _replay_into(
    connection: Connection, readers: list[PackageReader], stop: int, actor: str,
    progress: Progress | None,
) -> ReplayResult:
    if schema.is_vault(connection):
        vault_tables.drop_vault(connection)
    schema.upgrade(connection)
    header = readers[0].header
    connection.execute(vault_meta.insert(), [
        {"key": "vault_id", "value": header.vault_id},
        {"key": "created_at", "value": str(header.created_at)},
    ])
    # Secondary indexes are built once after loading, by sorting, instead of being updated
    # row by row (the same definitions as the migrations': the drift test holds them equal).
    log_indexes = list(events.indexes)
    table_indexes = storage.for_connection(connection).droppable_indexes(
        [index for table in tables.values() for index in table.indexes])
    for index in (*log_indexes, *table_indexes):
        index.drop(connection)
    fold = StateFold()
    last_seq, last_hash = _copy_log(connection, readers, stop, fold, progress)
    if last_seq != stop:
        raise PackageError(f"the packages end at seq {last_seq}, before seq {stop}")
    if fold.last_seq != last_seq:  # the fold saw every event the copy wrote, and no other
        raise IntegrityError(f"the fold ended at seq {fold.last_seq}, the copy at {last_seq}")
    for index in log_indexes:
        index.create(connection)
    # The state the package recorded at `stop`, if it recorded one there (its head, or a
    # checkpoint): the restored tables are compared with it directly, and the fold's own
    # digest is needed only where there is none (see _verify).
    expected = _expected_at(readers, stop)
    folded = _FoldedState(fold.final_digest() if expected is None else None,
                          dict(fold.counts))
    catalog = fold.catalog
    if vault_tables.use_tables(connection, catalog):  # a declared schema's own tables
        table_indexes = []  # dropped with the dms tables; the new ones are built with theirs
    # The fold's entities become the rows (and are given up): never both held in full.
    projection.load_rows(connection, catalog, projection_rows(fold, give_up=True))
    del fold
    for index in table_indexes:
        index.create(connection)
    verified_against, digest = _verify(connection, catalog, folded, expected, stop)
    # The state maintained with the log, as verified (the restore_job below updates it).
    log_state.save(connection, log_state.LogState(last_seq, last_hash, int(digest, 16),
                                                  dict(folded.counts)))
    head = log_read.read_head(connection)
    requester = _actor(connection, actor)
    commands = Commands(connection, store.Appender(connection), requester, "restore")
    note = f"replayed {len(readers)} package(s) to seq {stop} (head {head.hash.hex()[:16]})"
    # The story's record of a restore, where the schema has the type for it.
    job = commands.create("restore_job", {"requested_by": requester.id, "note": note}) \
        if "restore_job" in catalog.specs else None
    commands.flush()
    return ReplayResult(
        events=stop - readers[0].header.base_seq, head_seq=stop, head_hash=head.hash.hex(),
        state_digest=digest, counts=folded.counts, verified_against=verified_against,
        seconds=0.0, dry_run=False, restore_job=job,
    )


@dataclass(frozen=True)
class _FoldedState:
    """What the final verification needs of the fold."""

    digest: str | None  # None where the package recorded the state at the replay's end
    counts: dict[str, int]


def _copy_log(connection: Connection, readers: list[PackageReader], stop: int,
              fold: StateFold, progress: Progress | None) -> tuple[int, bytes]:
    """Insert the packages' events up to `stop` as they are (each frame verified first),
    folding each one as it goes; returns the seq and chain hash of the last one."""
    apply = fold.apply
    last_seq, last_hash = readers[0].header.base_seq, readers[0].header.base_hash
    for reader in readers:
        if reader.header.base_seq >= stop:
            break
        for fields, records, hashes in reader.frame_records(
                stop_seq=stop if stop <= reader.footer.head_seq else None):
            for item in fields:  # the decoded record: an Event's fields, as fold.apply takes
                apply(item)
            store.insert_records(connection, fields, records, hashes)
            last_seq, last_hash = fields[-1][0], hashes[-1]
            if progress:
                progress(last_seq, stop)
    if progress:  # the last one too, so a progress bar ends at 100 %
        progress(last_seq, stop)
    return last_seq, last_hash


def _verify(connection: Connection, catalog: Catalog, folded: _FoldedState,
            expected: tuple[str, dict[str, int], str] | None, stop: int) -> tuple[str, str]:
    """The target's own tables, read back as any reader would, must hold the folded counts
    and the state the package recorded at `stop`, or, where it recorded none, the fold's
    digest. Returns what the state was verified against, and its digest.

    Where the package recorded the state, the tables' digest is compared with it and the
    fold's is not computed: the tables are written from the fold, so "tables = package"
    already proves the restore right, and "fold = package" beside it would add only which
    of the two went wrong first, at ~1.5 us a live entity (a hash of every entity, again).
    A fold that differs from the package still fails the replay: the tables built from it
    differ from the package's digest. The counts of the fold are compared as well (free).
    """
    table_counts = projection_read.counts(connection, catalog)
    table_digest = state_digest(projection_read.read_state(connection, catalog))
    if table_counts != folded.counts or (
            folded.digest is not None and table_digest != folded.digest):
        raise IntegrityError(
            f"the restored tables do not match the replayed events (tables: {table_counts}, "
            f"digest {table_digest[:16]}; events: {folded.counts}"
            + (f", {folded.digest[:16]})" if folded.digest is not None else ")"))
    if expected is None:
        return "a digest folded during the replay", table_digest
    where, counts, digest = expected
    if counts != table_counts or digest != table_digest:
        raise IntegrityError(
            f"replayed state at seq {stop} does not match {where}: counts {table_counts} "
            f"vs {counts}, digest {table_digest[:16]} vs {digest[:16]}"
        )
    return where, table_digest


def _expected_at(
    readers: list[PackageReader], stop: int
) -> tuple[str, dict[str, int], str] | None:
    for reader in readers:
        if reader.footer.head_seq == stop:
            return f"{reader.path}'s head", dict(reader.footer.counts), reader.footer.state_digest
        for checkpoint in reader.footer.checkpoints:
            if checkpoint.seq == stop and checkpoint.state_digest is not None:
                return (f"{reader.path}'s checkpoint at seq {stop}", dict(checkpoint.counts),
                        checkpoint.state_digest)
    return None
