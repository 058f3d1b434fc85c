"""`eventvault verify`: check packages without a database, or a vault against its own log.

A package is read end to end: checksums, the hash chain across packages, every event folded
(references checked at their point in time), and counts and digests compared at every
checkpoint and head. A vault is checked by recomputing its chain from the stored events
(the first bad seq is reported) and by comparing the projection, entity by entity, with
the state folded from the log.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from eventvault import codec, projection, store
from eventvault.errors import EventVaultError, IntegrityError
from eventvault.events import GENESIS_HASH, chain_hash, decode_record
from eventvault.fold import StateFold
from eventvault.package import open_chain
from eventvault.tables import events
from eventvault.vault import Vault

MAX_REPORTED = 20


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


def verify_packages(paths: Sequence[str | os.PathLike[str]]) -> Report:
    """Read a full package and its increments end to end; what is wrong goes in the Report."""
    report = Report(checked=", ".join(str(p) for p in paths))
    try:
        readers = open_chain(paths)
        if readers[0].header.base_seq != 0:
            raise IntegrityError("the first package must be a full one")
        fold = StateFold()
        for reader in readers:
            checkpoints = {c.seq: c for c in reader.footer.checkpoints}
            for event in reader.events():
                fold.apply(event)
                checkpoint = checkpoints.get(event.seq)
                if checkpoint is not None:
                    _compare(report, f"{reader.path} checkpoint at seq {event.seq}", fold,
                             checkpoint.counts, checkpoint.state_digest)
            _compare(report, f"{reader.path} head", fold, reader.footer.counts,
                     reader.footer.state_digest)
            report.events += reader.footer.event_count
        report.head_seq = readers[-1].footer.head_seq
        report.head_hash = readers[-1].footer.head_hash.hex()
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


INDEX_COLUMNS = (
    events.c.seq, events.c.entity_type, events.c.entity_id, events.c.entity_version,
    events.c.event_type, events.c.schema_version, events.c.actor_id, events.c.reason,
    events.c.recorded_at,
)


def verify_vault(vault: Vault, expect_head: str | None = None) -> Report:
    """Recompute the vault's chain and compare its projection with its folded log."""
    report = Report(checked=vault.where)
    fold = StateFold()
    with vault.reading(consistent=True) as connection:
        previous, expected_seq = GENESIS_HASH, 1
        rows = connection.execute(
            select(*INDEX_COLUMNS, events.c.record, events.c.hash).order_by(events.c.seq),
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
            if tuple(row[:9]) != tuple(event[:9]):
                report.findings.append(
                    f"seq {row.seq}: the events table's columns do not match the event's "
                    "record (changed behind the log's back)")
                break
            try:
                fold.apply(event)
            except EventVaultError as error:
                report.findings.append(str(error))
                break
            expected_seq += 1
        rows.close()
        report.events = expected_seq - 1
        head = store.read_head(connection)
        report.head_seq, report.head_hash = head.seq, head.hash.hex()
        if expect_head is not None and head.hash.hex() != expect_head.strip().lower():
            report.findings.append(
                f"head hash {head.hash.hex()} is not the expected {expect_head}: the log was "
                "rewritten or is not the one you kept the head of")
        if report.ok:
            _compare_projection(connection, fold, report)
        report.state_digest = fold.digest()
    return report


def _compare_projection(connection: Connection, fold: StateFold, report: Report) -> None:
    differences = projection.differences(connection, fold)
    for difference in differences[:MAX_REPORTED]:
        report.findings.append(f"projection: {difference}")
    if len(differences) > MAX_REPORTED:
        report.findings.append(f"projection: ... and {len(differences) - MAX_REPORTED} more")
