"""What every test of an older version's fixtures (tests/fixtures/vX.Y.Z/) checks the same way.

Each version's make.sh writes packages, a vault file and exports with that version's own CLI;
these helpers replay, verify and upgrade them with today's code and compare what comes out with
what the old version wrote.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from conftest import Result

Cli = Callable[..., Result]


class OldFixtures:
    """The files one old version wrote, and its heads.json (heads and package verifications)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.heads = json.loads((directory / "heads.json").read_text())

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def export(self, name: str) -> list[str]:
        return (self.directory / name).read_text().splitlines()

    def copy(self, name: str, tmp_path: Path) -> Path:
        # A copy: even a read-only open of a WAL-mode file leaves -shm/-wal files beside it.
        copy = tmp_path / name
        shutil.copyfile(self.directory / name, copy)
        return copy

    def query(self, name: str, tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
        db = sqlite3.connect(self.copy(name, tmp_path))
        try:
            return list(db.execute(sql))
        finally:
            db.close()


def assert_replays_to(
    cli: Cli, db_url: str, packages: list[str], seq: int, expected: list[str],
    recorded: str | None = "restore_job",
) -> None:
    """`replay` of the packages gives, at `seq`, exactly the old export, line for line.

    `recorded`: the type of the one entity the replay adds after the package head (the story's
    restore_job), or None for a vault whose declared schema has no such type (nothing added).
    """
    result = cli("replay", *packages, db=db_url)
    assert result.code == 0, result.err
    # The state at the package head (`export --seq HEAD`) must be the stored export line for
    # line, and the current state must be that plus the replay's own entity and nothing else.
    at_head = cli("export", "--seq", str(seq), db=db_url)
    assert at_head.code == 0, at_head.err
    assert at_head.lines == expected
    now = cli("export", db=db_url).lines
    added = sorted(set(now) - set(expected))
    assert set(expected) <= set(now)
    assert [json.loads(line)["type"] for line in added] == ([recorded] if recorded else [])
    assert len(now) == len(expected) + len(added)
    verified = cli("verify", db=db_url)
    assert verified.code == 0, verified.err


def assert_init_upgrades(
    cli: Cli, vault_file: Path, tmp_path: Path, head_seq: int, head_hash: str,
    expected: list[str],
) -> None:
    """`init` upgrades an old vault file in place; its log and its export stay as they were."""
    url = f"sqlite:///{vault_file}"
    result = cli("init", db=url)
    assert result.code == 0, result.err
    verified = cli("verify", db=url)
    assert verified.code == 0, verified.err
    assert cli("export", db=url).lines == expected
    # The upgrade may record things of its own after the old head, but the old log itself is
    # untouched: a package of it up to the old head ends on the old head hash.
    package = tmp_path / "upgraded.evpkg"
    snap = cli("snapshot", "-o", str(package), "--seq", str(head_seq), db=url)
    assert snap.code == 0, snap.err
    again = cli("verify", str(package), "--expect-head", head_hash)
    assert again.code == 0, again.err
    # And a second init is a no-op on the data.
    assert cli("init", db=url).code == 0
    assert cli("export", db=url).lines == expected
