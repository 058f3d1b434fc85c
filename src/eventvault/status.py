"""`status`: the vault's head, id, schema revision, and the state digest and counts maintained
with the log (log_state.py), read in one transaction and never recomputed (`verify` does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventvault import log_read, log_state, schema
from eventvault.reader import Reader


@dataclass(frozen=True)
class Status:
    """What `Vault.status` reports."""

    vault_id: str
    head_seq: int
    head_hash: str
    state_digest: str
    counts: dict[str, int]
    url: str = ""  # the vault's URL, its password left out
    schema_revision: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "vault_id": self.vault_id,
            "url": self.url,
            "schema_revision": self.schema_revision,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "state_digest": self.state_digest,
            "counts": self.counts,
        }


def read_status(reader: Reader) -> Status:
    head = log_read.read_head(reader)
    state = log_state.current(reader)
    return Status(
        vault_id=log_read.vault_id(reader),
        head_seq=head.seq,
        head_hash=head.hash.hex(),
        state_digest=state.state_digest,
        counts=state.counts,
        url=reader.where,
        schema_revision=schema.current_revision(reader),
    )
