"""`eventvault verify`: check packages without a database, or a vault against its own log.

A package is read end to end: checksums, the hash chain across packages, every event folded
(references checked at their point in time), and counts and digests compared at every
checkpoint and head. A vault is checked by recomputing its chain from the stored events
(the first bad seq is reported) and by comparing the projection, entity by entity, with
the state folded from the log.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from eventvault import codec, log_read, log_state, projection
from eventvault.errors import EventVaultError, IntegrityError
from eventvault.events import GENESIS_HASH, chain_hash, decode_record, event_id
from eventvault.fold import StateFold
from eventvault.package import open_chain
from eventvault.system import bound_vault_id
from eventvault.tables import events
from eventvault.vault import Vault

MAX_REPORTED = 20
PROGRESS_EVERY = 5000  # events between two calls of a progress callback
Progress = Callable[[int, int], None]  # (events checked, events to check)


@dataclass
class Report:
    """What was checked and what was found; `ok` when nothing was."""

    checked: str
    events: int = 0
    head_seq: int = 0
    head_hash: str = ""
    state_digest: str = ""
    findings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checked": self.checked, "events": self.events,
                "head_seq": self.head_seq, "head_hash": self.head_hash,
                "state_digest": self.state_digest,
                "first_problem": self.findings[0] if self.findings else None,
                "problems": list(self.findings)}


def verify_packages(paths: Sequence[str | os.PathLike[str]],
                    progress: Progress | None = None) -> Report:
    """Read a full package and its increments end to end; what is wrong goes in the Report."""
    report = Report(checked=", ".join(str(p) for p in paths))
    try:
        readers = open_chain(paths)
        if readers[0].header.base_seq != 0:
            raise IntegrityError("the first package must be a full one")
        fold = StateFold()
        total = readers[-1].footer.head_seq
        for reader in readers:
            checkpoints = {c.seq: c for c in reader.footer.checkpoints}
            for event in reader.events():
                if event.seq == 1:
                    _check_vault_id(report, event.reason, reader.header.vault_id,
                                    f"{reader.path}'s header")
                fold.apply(event)
                if progress and event.seq % PROGRESS_EVERY == 0:
                    progress(event.seq, total)
                checkpoint = checkpoints.get(event.seq)
                if checkpoint is not None:
                    _compare(report, f"{reader.path} checkpoint at seq {event.seq}", fold,
                             checkpoint.counts, checkpoint.state_digest)
            _compare(report, f"{reader.path} head", fold, reader.footer.counts,
                     reader.footer.state_digest)
            declared = reader.footer.schema
            if declared is not None and declared != fold.catalog.canonical:
                report.findings.append(
                    f"{reader.path} head: the footer's schema is not the one its events "
                    f"declare (version {fold.catalog.version}, {fold.catalog.hash[:16]})")
            report.events += reader.footer.event_count
        report.head_seq = readers[-1].footer.head_seq
        report.head_hash = readers[-1].footer.head_hash.hex()
        if progress:
            progress(total, total)
        report.state_digest = fold.digest()
    except EventVaultError as error:
        report.findings.append(str(error))
    return report


def _compare(report: Report, where: str, fold: StateFold, counts: dict[str, int],
             digest: str | None) -> None:
    if dict(fold.counts) != dict(counts):
        report.findings.append(f"{where}: counts {dict(counts)} but the events give "
                               f"{dict(fold.counts)}")
    if digest is not None and digest != fold.digest():
        report.findings.append(f"{where}: state digest {digest[:16]} but the events give "
                               f"{fold.digest()[:16]}")


def _check_vault_id(report: Report, first_reason: str | None, vault_id: str, where: str
                    ) -> None:
    bound = bound_vault_id(first_reason)
    if bound is not None and bound != vault_id:  # None: a log from before the binding
        report.findings.append(f"{where} names vault {vault_id}, but the log's first event "
                               f"binds vault {bound}")


INDEX_COLUMNS = (
    events.c.seq, events.c.entity_type, events.c.entity_id, events.c.entity_version,
    events.c.event_type, events.c.schema_version, events.c.actor_id, events.c.reason,
    events.c.recorded_at,
)


def verify_vault(vault: Vault, expect_head: str | None = None,
                 against: Sequence[str | os.PathLike[str]] = (),
                 progress: Progress | None = None) -> Report:
    """The vault's log (chain, index columns, bound vault id), the state digest and counts
    maintained with it, and its projection, all against the fold of the log; with
    `expect_head` or `against` (packages kept elsewhere), the log against those witnesses."""
    report = Report(checked=vault.where)
    fold = StateFold()
    witness = _package_head(report, against) if against else None
    with vault.reading(consistent=True) as connection:
        previous, expected_seq, broken = GENESIS_HASH, 1, True
        meta_vault_id = vault.vault_id(connection)
        total = log_read.read_head(connection).seq if progress else 0
        rows = connection.execute(
            select(*INDEX_COLUMNS, events.c.event_id, events.c.record, events.c.hash)
            .order_by(events.c.seq),
            execution_options={"yield_per": 5000},
        )
        for row in rows:
            if row.seq != expected_seq:
                report.findings.append(
                    f"seq {expected_seq} is missing from the log (next stored is {row.seq})")
                break
            record = codec.from_stored(bytes(row.record))
            previous = chain_hash(previous, record)
            if previous != bytes(row.hash):
                report.findings.append(
                    f"hash chain broken at seq {row.seq}: the event does not match its hash "
                    "(changed, removed or reordered)")
                break
            event = decode_record(record, previous)
            if tuple(row[:9]) != tuple(event[:9]) or row.event_id != event_id(previous):
                report.findings.append(
                    f"seq {row.seq}: the events table's columns do not match the event's "
                    "record (changed behind the log's back)")
                break
            if row.seq == 1:
                _check_vault_id(report, event.reason, meta_vault_id, "vault_meta")
            try:
                fold.apply(event)
            except EventVaultError as error:
                report.findings.append(str(error))
                break
            expected_seq += 1
            if progress and row.seq % PROGRESS_EVERY == 0:
                progress(row.seq, total)
        else:
            broken = False  # every event was read and folded
        rows.close()
        sound = not broken
        if progress and sound:
            progress(total, total)
        report.events = expected_seq - 1
        head = log_read.read_head(connection)
        report.head_seq, report.head_hash = head.seq, head.hash.hex()
        if expect_head is not None and head.hash.hex() != expect_head.strip().lower():
            report.findings.append(
                f"head hash {head.hash.hex()} is not the expected {expect_head}: the log was "
                "rewritten or is not the one you kept the head of")
        if witness is not None:
            _compare_witness(connection, report, *witness)
        if sound:  # the fold is of the whole log: everything derived from it can be checked
            _compare_maintained(connection, fold, head, report)
            _compare_projection(connection, fold, report)
        report.state_digest = fold.digest()
    return report


def _package_head(report: Report, paths: Sequence[str | os.PathLike[str]]
                  ) -> tuple[str, int, bytes, str] | None:
    """(names, head seq, head hash, vault id) of a chain of packages, verified first."""
    checked = verify_packages(paths)
    if not checked.ok:
        report.findings.extend(f"--against: {finding}" for finding in checked.findings)
        return None
    readers = open_chain(paths)
    footer = readers[-1].footer
    return checked.checked, footer.head_seq, footer.head_hash, readers[0].header.vault_id


def _compare_witness(connection: Connection, report: Report, names: str, seq: int,
                     head_hash: bytes, vault_id: str) -> None:
    """A kept package's head must be in the log: same seq, same hash."""
    found = connection.execute(select(events.c.hash).where(events.c.seq == seq)).scalar()
    if found is None:
        report.findings.append(
            f"the vault's log does not contain {names}'s head (seq {seq}): it ends at seq "
            f"{report.head_seq}; events were removed from its end, or the package is not "
            "from this vault")
    elif bytes(found) != head_hash:
        other = "" if vault_id == _meta_vault_id(connection) else \
            f" (the package is from vault {vault_id})"
        report.findings.append(
            f"the vault's log does not contain {names}'s head: seq {seq} has another hash; "
            f"the log was rewritten{other}")


def _meta_vault_id(connection: Connection) -> str | None:
    from eventvault.tables import vault_meta

    return connection.execute(
        select(vault_meta.c.value).where(vault_meta.c.key == "vault_id")).scalar()


def _compare_maintained(connection: Connection, fold: StateFold, head: log_read.Head,
                        report: Report) -> None:
    """The state digest and counts maintained with every write against the fold."""
    kept = log_state.load(connection)
    if kept is None:
        report.findings.append("the vault has no maintained state digest; run `eventvault "
                               "init` to compute it from the log")
        return
    if (kept.head_seq, kept.head_hash) != (head.seq, head.hash):
        report.findings.append(
            f"maintained state: recorded at seq {kept.head_seq} "
            f"({kept.head_hash.hex()[:16]}), but the log's head is seq {head.seq} "
            f"({head.hash.hex()[:16]}): the log's end was changed behind its back")
    if kept.counts != dict(fold.counts):
        report.findings.append(f"maintained state: counts {kept.counts} but the log gives "
                               f"{dict(fold.counts)}")
    if kept.state_digest != fold.digest():
        report.findings.append(f"maintained state: digest {kept.state_digest[:16]} but the "
                               f"log gives {fold.digest()[:16]}")


def _compare_projection(connection: Connection, fold: StateFold, report: Report) -> None:
    differences = projection.differences(connection, fold)
    for difference in differences[:MAX_REPORTED]:
        report.findings.append(f"projection: {difference}")
    if len(differences) > MAX_REPORTED:
        report.findings.append(f"projection: ... and {len(differences) - MAX_REPORTED} more")
    if differences:  # the repair, named once: the log is sound, the tables are rebuilt from it
        report.findings[-1] += "; `eventvault rebuild --as ADMIN` rebuilds the tables from the log"
