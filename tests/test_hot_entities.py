"""A hot entity's next write transaction folds only its newer events (the Vault remembers
what committed transactions folded: log_state.FoldedEntities), and what it remembers never
outlives the log it came from: another writer in between, a failed transaction, a vault
replaced underneath by an earlier point."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventvault import Vault, log_state, replay, snapshot, verify_vault


def rename(vault: Vault, document: str, title: str) -> None:
    with vault.write("ann") as commands:
        commands.update_document(document, {"title": title})


def current(vault: Vault, document: str) -> tuple[str, int]:
    with vault.write("admin") as commands:
        row = commands.find(document, "document")
        return row["title"], row["version"]


def test_a_hot_entity_stays_the_logs_across_writers_failures_and_a_replace(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Vault(db_url) as vault, Vault(db_url) as other:  # two processes, in effect
        vault.init()
        with vault.write("admin") as commands:
            commands.add_user("ann", "author")
        with vault.write("ann") as commands:
            document = commands.add_document("v0", "ann")
        for n in range(1, 6):
            rename(vault, document, f"v{n}")
        earlier = snapshot(vault, tmp_path / "at-v5.evpkg").path  # the document at version 6
        # Its next transaction folds nothing it has folded before.
        decoded: list[object] = []
        real = log_state.decode_record
        monkeypatch.setattr(log_state, "decode_record",
                            lambda *args: decoded.append(args) or real(*args))
        rename(vault, document, "v6")
        assert decoded == []
        monkeypatch.undo()
        rename(other, document, "elsewhere")  # the other writer's event is folded in
        rename(vault, document, "v8")
        assert current(vault, document) == ("v8", 9)
        # Rolled back: nothing of it is remembered.
        with pytest.raises(RuntimeError), vault.write("ann") as commands:
            commands.update_document(document, {"title": "rolled back"})
            raise RuntimeError("the caller's own failure")
        rename(vault, document, "v9")
        assert current(vault, document) == ("v9", 10)
        report = verify_vault(vault)
        assert report.ok, report.findings
        # Replaced underneath by an earlier point: the remembered version 10 is not this log's.
        replay(other, [earlier], replace=True, actor="admin",
               safety_path=tmp_path / "safety.evpkg")
        assert current(vault, document) == ("v5", 6)
        rename(vault, document, "after the restore")
        assert current(vault, document) == ("after the restore", 7)
        report = verify_vault(vault)
        assert report.ok, report.findings
