"""A replay's fold, run in a helper process so that it uses the machine's second core.

A replay does two things with every event: it copies it into the target's log (decode, chain
check, insert: mostly the database's time) and it folds it (every reference, version and
field checked: pure Python). One process cannot do both at once, the GIL sees to that, and
measured at 1M events each half takes about as long as the other. So a large replay folds
the same package files in a helper process, which reads and checks them itself and sends
back only what the replay needs: the projection rows, the digest, the counts. A small one
folds in-process first: starting the helper costs more than it saves.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eventvault.errors import EventVaultError, IntegrityError
from eventvault.fold import StateFold
from eventvault.package import open_chain
from eventvault.projection import ProjectionRows, projection_rows

HELPER_FROM_EVENTS = 50_000  # below this, the helper's start (~0.4 s) costs more than it saves


@dataclass(frozen=True)
class FoldedState:
    """What a replay needs of the state its packages fold to."""

    rows: ProjectionRows
    digest: str
    counts: dict[str, int]
    last_seq: int
    last_hash: bytes  # the chain hash at last_seq: which events exactly were folded
    schema: bytes  # the canonical schema the log declares at last_seq


def fold_packages(paths: Sequence[str], stop: int) -> FoldedState:
    """Fold the chain of packages up to seq `stop`, every frame verified as it is read."""
    fold = StateFold()
    last_hash = b""
    for reader in open_chain(paths):
        if reader.header.base_seq >= stop:
            break
        for event in reader.events(stop_seq=stop if stop <= reader.footer.head_seq else None):
            fold.apply(event)
            last_hash = event.hash
    digest = fold.digest()
    fold.hashes.clear()  # ~100 bytes a live entity, not needed for the rows
    return FoldedState(projection_rows(fold), digest, dict(fold.counts), fold.last_seq,
                       last_hash, fold.catalog.canonical)


class PendingFold:
    """The fold of `paths` up to `stop`: in a helper process, or (`helper=False`) done at
    once, in this one. `result()` gives it, or raises what the fold found wrong.

    The helper is a fresh interpreter running this module (`python -m`), not a
    multiprocessing child: that would re-import the caller's main script, which a library
    must not ask of the programs that use it. It answers with one pickle in a nameless
    temporary file, read only after the helper has exited, so that the answer is never in
    both processes at once (measured at 1M events: 657 MB summed when it came through a
    pipe while the helper still held its state; 473 MB this way).
    """

    def __init__(self, paths: Sequence[str], stop: int, *, helper: bool) -> None:
        self._folded: FoldedState | None = None
        self._process: subprocess.Popen[bytes] | None = None
        if not helper:
            self._folded = fold_packages(paths, stop)
            return
        # The answer file has no name (unlinked at once, shared by descriptor): nothing is
        # left behind however either process ends.
        self._answer = tempfile.TemporaryFile()  # noqa: SIM115 - closed in result()/cancel()
        # The helper must run this very eventvault, wherever it was imported from.
        here = str(Path(__file__).resolve().parents[1])
        search = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
        # Its stderr is kept, not shown: a crash of the helper becomes one line of ours.
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__,
             json.dumps([list(map(str, paths)), stop, self._answer.fileno(), os.getpid()])],
            env={**os.environ, "PYTHONPATH": search}, pass_fds=(self._answer.fileno(),),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._errors = b""

    def wait(self) -> None:
        """Wait for the helper, if any, to finish (and so to give its memory back)."""
        if self._process is not None and self._process.returncode is None:
            self._errors = self._process.communicate()[1]

    def result(self) -> FoldedState:
        if self._folded is None:
            self._folded = self._receive()
        return self._folded

    def cancel(self) -> None:
        """Stop the helper, if any: the replay failed and will not ask for the result."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self.wait()
            self._answer.close()

    def _receive(self) -> FoldedState:
        assert self._process is not None
        self.wait()
        try:
            self._answer.seek(0)
            found = pickle.load(self._answer)
        except Exception:
            found = None
        finally:
            self._answer.close()
        if isinstance(found, EventVaultError):
            raise found
        if self._process.returncode != 0 or not isinstance(found, FoldedState):
            last = (self._errors.decode(errors="replace").strip().splitlines() or ["no output"])
            raise IntegrityError(f"the fold's helper process failed (exit code "
                                 f"{self._process.returncode}): {last[-1]}")
        return found


def _serve(arguments: str) -> None:
    """The helper's side: fold, and write the result (or what was wrong) as one pickle."""
    # Ctrl-C reaches the whole process group: the replay decides, and stops this helper.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()  # as in the replay: millions of objects kept, no cycles to collect
    paths, stop, answer_fd, parent = json.loads(arguments)
    # The parent's pid comes from the parent: one that died while this helper was starting is
    # noticed at once (os.getppid() read here would already be the orphans' new parent).
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        answer: FoldedState | EventVaultError = fold_packages(paths, stop)
    except EventVaultError as error:  # a finding about the packages: the replay reports it
        answer = error
    with os.fdopen(answer_fd, "wb") as answer_file:
        pickle.dump(answer, answer_file, protocol=pickle.HIGHEST_PROTOCOL)


def _exit_with(parent: int) -> None:
    """A killed replay cannot stop its helper: the helper stops itself when orphaned."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


if __name__ == "__main__":
    # Through the module's importable name, so that what is pickled is
    # eventvault.parallel_fold.FoldedState, not __main__.FoldedState.
    from eventvault.parallel_fold import _serve as serve

    serve(sys.argv[1])
