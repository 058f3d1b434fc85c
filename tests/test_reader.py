"""The read commands' plain SQLite path (reader.py): it names the vault as SQLAlchemy does,
never creates or changes the file, and fails in one line where the file is no vault."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import ok
from sqlalchemy.engine import make_url

from eventvault.reader import sqlite_file

READS = (["status"], ["status", "--json"], ["audit", "history", "admin"], ["audit", "log"])


@pytest.mark.parametrize("url", [
    "sqlite:///vault.db", "sqlite:////tmp/a b/vault.db", "sqlite+pysqlite:///v-1_2.~db",
    "sqlite:///./x/../vault.db", "sqlite:///a+b.db",
    # not plain: through SQLAlchemy, which renders these otherwise or reads options from them
    "sqlite:///ü.db", "sqlite:///a:b.db", "sqlite:///a%20b.db", "sqlite:///v.db?timeout=5",
    "sqlite:///:memory:", "sqlite://", "postgresql://u:secret@host/db",
])
def test_a_plain_sqlite_url_names_the_vault_as_sqlalchemy_does(url: str) -> None:
    if sqlite_file(url) is not None:
        assert make_url(url).render_as_string(hide_password=True) == url
        assert str(sqlite_file(url)) == str(Path(make_url(url).database or ""))


def test_a_vault_at_any_path_answers_alike(tmp_path: Path) -> None:
    """The same vault named by a plain URL and by one SQLAlchemy must parse gives the same
    answers but for the URL it reports."""
    plain = tmp_path / "vault.db"
    ok("init", db=f"sqlite:///{plain}")
    ok("demo", db=f"sqlite:///{plain}")
    odd = tmp_path / "vault:ü.db"
    odd.symlink_to(plain)
    odd_url = f"sqlite:///{odd}"
    assert sqlite_file(f"sqlite:///{plain}") is not None and sqlite_file(odd_url) is None
    first = json.loads(ok("status", "--json", db=f"sqlite:///{plain}").out)
    second = json.loads(ok("status", "--json", db=odd_url).out)
    assert second.pop("url") == make_url(odd_url).render_as_string(hide_password=True)
    assert first.pop("url") == f"sqlite:///{plain}"
    assert first == second
    for words in READS[2:]:
        assert ok(*words, db=f"sqlite:///{plain}").out == ok(*words, db=odd_url).out


def test_reading_never_creates_or_changes_the_file(tmp_path: Path, cli) -> None:
    missing = tmp_path / "missing.db"
    for words in READS:
        result = cli(*words, db=f"sqlite:///{missing}")
        assert result.code == 1 and "no such vault" in result.err
        assert len(result.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []

    vault = tmp_path / "vault.db"
    ok("init", db=f"sqlite:///{vault}")
    connection = sqlite3.connect(vault)  # everything in the main file, no WAL left
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    before = vault.read_bytes()
    for words in READS:
        ok(*words, db=f"sqlite:///{vault}")
        # nothing left beside it either: a read-only (mode=ro) connection leaves the -wal and
        # -shm files of a WAL vault behind, owned by whoever read
        assert sorted(p.name for p in tmp_path.iterdir()) == ["vault.db"]
    assert vault.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_a_file_that_is_no_vault_is_refused_in_one_line(tmp_path: Path, cli,
                                                        content: bytes) -> None:
    fake = tmp_path / "fake.db"
    fake.write_bytes(content)
    for words in READS:
        result = cli(*words, db=f"sqlite:///{fake}")
        assert result.code == 1, result.err
        assert len(result.err.splitlines()) == 1
        assert f"{fake} is not an EventVault vault" in result.err
    assert fake.read_bytes() == content


def test_status_reads_the_head_and_the_digest_from_one_snapshot(db_url: str) -> None:
    """status reads the head from the log and the digest and counts from the maintained
    state, in separate queries: a commit between them must not pair one commit's head with
    another's digest (PostgreSQL and MariaDB read under READ COMMITTED unless asked)."""
    from eventvault import log_read, log_state
    from eventvault.vault import Vault

    ok("init", db=db_url)
    reading, writing = Vault(db_url), Vault(db_url)
    with reading.read() as reader:
        head = log_read.read_head(reader)
        with writing.write() as commands:
            commands.add_user("carol")
        assert log_state.current(reader).head_seq == head.seq
    with reading.read() as reader:
        assert log_state.current(reader).head_seq == log_read.read_head(reader).seq > head.seq
