"""A snapshot's look at the projection tables: their counts and digest, in a helper process
when the vault is large.

A package's figures come from the log; the tables are only compared with them, so that a
snapshot can say they have drifted (issue 10). That comparison reads and hashes every row:
about a quarter of a large snapshot's time, on the same core as the copy of the log. So a
large snapshot has a helper process take the tables' figures over its own read transaction,
beside the copy. The helper also says at which head it read them: if another writer
committed between the two transactions' starts, its figures are of another state, and the
snapshot takes them again in its own transaction. Any failure of the helper has the same
fallback: the helper can make a snapshot faster, never wrong.

The helper is a fresh interpreter running this module (`python -m`), never a fork of the
caller. On a plain SQLite file it reads through the standard library's sqlite3
(vault_read.py), as `status` does: SQLAlchemy's import was ~0.4 s of its CPU, a tenth of a
1M snapshot's floor; it starts in ~0.15 s without.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eventvault import log_read, projection_read, vault_read, vault_schema
from eventvault.digest import state_digest
from eventvault.reader import Reader, as_reader

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from eventvault.vault import Vault

# Below this many events, starting the helper (~0.4 s of CPU for its imports through
# SQLAlchemy, ~0.15 s on a plain SQLite file) costs more than the tables' read it takes off
# the snapshot.
HELPER_FROM_EVENTS = 200_000


@dataclass(frozen=True)
class TableFigures:
    """The projection's live counts and state digest, read at the log's head (seq, hash)."""

    head_seq: int
    head_hash: bytes
    counts: dict[str, int]
    digest: str


def table_figures(source: Reader | Connection) -> TableFigures:
    reader = as_reader(source)
    catalog = vault_schema.history(reader).catalog
    head = log_read.read_head(reader)
    return TableFigures(head.seq, head.hash, projection_read.counts(reader, catalog),
                        state_digest(projection_read.read_state(reader, catalog)))


class PendingFigures:
    """The tables' figures, taken by a helper process on the vault at `url` (its password
    included) started now (`helper=True`) or, when asked for, in the caller's transaction."""

    def __init__(self, url: str | None, *, helper: bool) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        if not helper or url is None:
            return
        # The helper must run this very eventvault, wherever it was imported from.
        here = str(Path(__file__).resolve().parents[1])
        search = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(os.getpid())],
                env={**os.environ, "PYTHONPATH": search}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            # The URL (password included) on stdin: never on a command line others can read.
            assert self._process.stdin is not None
            self._process.stdin.write(url.encode())
            self._process.stdin.close()
        except OSError:
            self.cancel()

    def figures(self, source: Reader | Connection, head: log_read.Head) -> TableFigures:
        """The tables' figures at `head`: the helper's if it read them there, else read now
        in `source` (the snapshot's own transaction)."""
        found = self._receive()
        if found is not None and (found.head_seq, found.head_hash) == (head.seq, head.hash):
            return found
        return table_figures(source)

    def cancel(self) -> None:
        """Stop the helper, if any (the snapshot failed or no longer needs it)."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._finish()

    def _finish(self) -> bytes | None:
        """Wait for the helper; its output if it succeeded. (Not communicate(): stdin was
        closed already, which it cannot take.)"""
        process, self._process = self._process, None
        assert process is not None and process.stdout is not None
        with process.stdout:
            output = process.stdout.read()
        return output if process.wait() == 0 else None

    def _receive(self) -> TableFigures | None:
        if self._process is None:
            return None
        output = self._finish()
        if output is None:
            return None
        try:
            answer = json.loads(output)
            return TableFigures(int(answer["head_seq"]), bytes.fromhex(answer["head_hash"]),
                                {str(k): int(v) for k, v in answer["counts"].items()},
                                str(answer["digest"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _serve(parent: int) -> None:
    """The helper's side: the figures of the vault named on stdin, as JSON on stdout."""
    # Ctrl-C reaches the whole process group: the snapshot decides, and stops this helper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    url = sys.stdin.read()
    with vault_read.read_vault(url, lambda: _vault(url)) as reader:
        found = table_figures(reader)
    json.dump({"head_seq": found.head_seq, "head_hash": found.head_hash.hex(),
               "counts": found.counts, "digest": found.digest}, sys.stdout)


def _vault(url: str) -> Vault:
    """Any other engine's vault (and SQLite URLs with options), through SQLAlchemy."""
    from eventvault.vault import Vault

    return Vault(url)


def _exit_with(parent: int) -> None:
    """A killed snapshot cannot stop its helper: the helper stops itself when orphaned."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


if __name__ == "__main__":
    from eventvault.table_check import _serve as serve

    serve(int(sys.argv[1]))
