"""A snapshot's look at the projection tables, taken by a helper process in a large vault.

The helper only ever takes work off the snapshot: it must find the same drift the snapshot
finds itself, and when it fails, or read another state than the snapshot's, the snapshot
takes the tables' figures in its own transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_integrity import FIRST_DOCUMENT
from test_reliability import raw

from eventvault import log_read, table_check
from eventvault.snapshot import snapshot
from eventvault.vault import Vault


@pytest.fixture
def helper_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every snapshot of the whole log uses the helper, however small the vault."""
    # The module (the package's `eventvault.snapshot` attribute is the function).
    monkeypatch.setattr(sys.modules["eventvault.snapshot"], "HELPER_FROM_EVENTS", 0)


def test_the_helper_finds_drifted_tables(demo_db: str, cli, tmp_path: Path,
                                         helper_always: None) -> None:
    clean = cli("snapshot", "-o", str(tmp_path / "clean.evpkg"), db=demo_db)
    assert clean.code == 0 and clean.err == ""
    raw(demo_db, f"UPDATE documents SET title = 'T' WHERE id = {FIRST_DOCUMENT}")
    drifted = cli("snapshot", "-o", str(tmp_path / "drifted.evpkg"), db=demo_db)
    assert drifted.code == 0
    assert len(drifted.err.strip().splitlines()) == 1 and "tables have drifted" in drifted.err
    # The package is the log's either way: the same events, the same state.
    verified = [cli("verify", str(tmp_path / name)) for name in ("clean.evpkg",
                                                                 "drifted.evpkg")]
    assert all(result.code == 0 for result in verified)
    assert verified[0].out.split("state digest")[1] == verified[1].out.split("state digest")[1]


def test_a_failed_helper_leaves_the_check_to_the_snapshot(
        demo_db: str, cli, tmp_path: Path, helper_always: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw(demo_db, "DELETE FROM placeholders WHERE \"key\" = 'watermark'")
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the helper exits 1 at once
    result = cli("snapshot", "-o", str(tmp_path / "p.evpkg"), db=demo_db)
    assert result.code == 0 and "tables have drifted" in result.err


def test_figures_read_at_another_head_are_read_again(vault: str) -> None:
    opened = Vault(vault)
    url = opened.url.render_as_string(hide_password=False)
    try:
        with opened.reading(consistent=True) as connection:
            head = log_read.read_head(connection)
            pending = table_check.PendingFigures(url, helper=True)
            found = pending.figures(connection, head)
            assert found == table_check.table_figures(connection)
            # A helper that read the tables after another writer's commit: not used.
            pending = table_check.PendingFigures(url, helper=True)
            later = log_read.Head(head.seq + 1, bytes(32), head.recorded_at)
            assert pending.figures(connection, later).head_seq == head.seq
    finally:
        opened.close()


def test_a_snapshot_that_fails_stops_its_helper(vault: str, tmp_path: Path,
                                                helper_always: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[table_check.PendingFigures] = []
    original = table_check.PendingFigures.__init__

    def record(self: table_check.PendingFigures, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(table_check.PendingFigures, "__init__", record)
    raw(vault, "UPDATE events SET record = (SELECT record FROM events WHERE seq = 3) "
               "WHERE seq = 2")
    opened = Vault(vault)
    try:
        with pytest.raises(Exception, match="hash chain is broken at seq 2"):
            snapshot(opened, tmp_path / "p.evpkg")
    finally:
        opened.close()
    assert started and started[0]._process is None  # waited for, not left running
    assert not (tmp_path / "p.evpkg").exists()
