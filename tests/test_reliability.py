"""Reliability: crashes at random moments, concurrent writers, tampering, permissions.

The harnesses run real processes against real databases and are bounded in time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from eventvault import storage
from eventvault.errors import ConcurrencyError
from eventvault.package import PackageReader
from eventvault.vault import Vault

WRITER = Path(__file__).with_name("writer_process.py")


def writer(db: str, name: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WRITER), db, name, str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def rounds_in(db: str) -> dict[str, tuple[int, int, str | None]]:
    """username -> (documents, workflows, state of its workflow) for harness users."""
    engine = create_engine(db)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT u.username, COUNT(DISTINCT d.id), COUNT(w.id), MAX(s.name) FROM users u "
            "LEFT JOIN documents d ON d.author_id = u.id "
            "LEFT JOIN workflows w ON w.document_id = d.id "
            "LEFT JOIN workflow_states s ON s.id = w.current_state_id "
            "WHERE u.username LIKE 'w%-%' GROUP BY u.username")).all()
    engine.dispose()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def test_killed_writers_leave_whole_commands_only(db_url: str, cli) -> None:
    assert cli("init", db=db_url).code == 0
    rng = random.Random(5)
    for attempt in range(5):
        process = writer(db_url, f"w{attempt}", 10_000)
        # Once it has committed a round (however slow the machine), kill it mid-stream.
        assert process.stdout is not None and process.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        verified = cli("verify", db=db_url)
        assert verified.code == 0, verified.err
    rounds = rounds_in(db_url)
    assert rounds, "no round committed before the kills; the harness did not exercise writes"
    assert all(found == (1, 1, "in_review") for found in rounds.values()), rounds


def test_concurrent_writers_lose_nothing(db_url: str, cli) -> None:
    assert cli("init", db=db_url).code == 0
    before = json.loads(cli("status", "--json", db=db_url).out)["head_seq"]
    processes = [writer(db_url, f"w{n}", 15) for n in range(4)]
    for process in processes:
        _out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err.decode()
    rounds = rounds_in(db_url)
    assert sorted(rounds) == sorted(f"w{n}-{r}" for n in range(4) for r in range(15))
    assert all(found == (1, 1, "in_review") for found in rounds.values())
    engine = create_engine(db_url)
    with engine.connect() as connection:
        seqs = [row[0] for row in connection.execute(text("SELECT seq FROM events ORDER BY seq"))]
    engine.dispose()
    assert seqs == list(range(1, before + 4 * 15 * 4 + 1))  # gapless, nothing lost or doubled
    assert cli("verify", db=db_url).code == 0  # chain valid, projection consistent


def usernames_in(package: Path) -> set[str]:
    return {event.fields["username"] for event in PackageReader(package).events()
            if event.entity_type == "user" and event.event_type == "created"}


@pytest.mark.slow
def test_replaces_under_concurrent_writers_lose_no_committed_write(db_url: str, cli,
                                                                   tmp_path: Path) -> None:
    # Writers keep committing rounds while the vault is replaced again and again by a package
    # of its empty start. Each round that a writer saw commit (and printed) must be in the
    # safety snapshot of the replace that wiped it, or still in the vault at the end.
    assert cli("init", db=db_url).code == 0
    start = tmp_path / "start.evpkg"
    assert cli("snapshot", "-o", str(start), db=db_url).code == 0
    processes = [writer(db_url, f"w{n}", 40) for n in range(3)]
    safeties: list[Path] = []
    while any(process.poll() is None for process in processes) and len(safeties) < 30:
        safety = tmp_path / f"safety-{len(safeties)}.evpkg"
        result = cli("replay", str(start), "--replace", "--safety-snapshot", str(safety),
                     "--as", "admin", db=db_url)
        assert result.code == 0, result.err
        safeties.append(safety)
    committed: set[str] = set()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        committed.update(out.decode().split())
    kept = set(rounds_in(db_url)).union(*(usernames_in(safety) for safety in safeties))
    assert len(committed) == 3 * 40
    assert committed <= kept, f"lost: {sorted(committed - kept)}"
    wiped = set().union(*(usernames_in(safety) for safety in safeties))
    assert len(safeties) >= 2 and wiped & committed, "no replace overlapped the writers"
    assert cli("verify", db=db_url).code == 0


def test_two_writers_on_one_entity_one_wins(demo_db: str, cli) -> None:
    document = next(json.loads(line)["uuid"] for line in cli("export", db=demo_db).lines
                    if '"type":"document"' in line)
    engine = create_engine(demo_db)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version FROM documents WHERE uuid = :u"),
                                     {"u": document}).scalar_one()
    engine.dispose()
    environment = {**os.environ, "EVENTVAULT_DB": demo_db}
    processes = [
        subprocess.Popen([sys.executable, "-m", "eventvault", "document", "update", document,
                          "--set", f"title=writer {n}", "--expect-version", str(version),
                          "--as", "admin"], env=environment,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for n in range(2)
    ]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in processes]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "reload and try again" in loser and len(loser.strip().splitlines()) == 1
    assert cli("verify", db=demo_db).code == 0


def test_the_library_retries_a_conflict(demo_db: str) -> None:
    vault = Vault(demo_db)
    document = next(e["uuid"] for e in vault.export() if e["type"] == "document")
    attempts: list[int] = []

    def rename(commands) -> str:
        attempts.append(1)
        current = commands.find(document, "document")["version"]
        stale = current - 1 if len(attempts) == 1 else current  # first attempt saw old data
        return commands.update_document(document, {"title": "renamed"}, stale)

    with pytest.raises(ConcurrencyError), vault.write("admin") as commands:
        rename(commands)
    attempts.clear()
    assert vault.write_retrying(rename, "admin") == document
    assert len(attempts) == 2
    assert next(e for e in vault.export() if e["uuid"] == document)["fields"]["title"] \
        == "renamed"


# --- tampering ---------------------------------------------------------------------------

def raw(db: str, *statements: str) -> None:
    """Change the vault behind EventVault's back, the append-only triggers removed first."""
    engine = create_engine(db)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))
        else:
            for undo in storage.for_connection(connection).drop_append_only_guard():
                connection.execute(text(undo))
        if engine.dialect.name == "mysql":  # "key" is an identifier, as in standard SQL
            connection.execute(text("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')"))
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


COLUMNS_DIFFER = "the events table's columns do not match the event's record"


@pytest.mark.parametrize("statements, finding", [
    (["UPDATE events SET record = (SELECT record FROM events WHERE seq = 61) WHERE seq = 60"],
     "hash chain broken at seq 60"),
    (["UPDATE events SET reason = 'forged' WHERE seq = 60"], f"seq 60: {COLUMNS_DIFFER}"),
    (["UPDATE events SET actor_id = (SELECT actor_id FROM events WHERE seq = 1) "
      "WHERE seq = 70"], f"seq 70: {COLUMNS_DIFFER}"),
    (["DELETE FROM events WHERE seq = 60"], "seq 60 is missing"),
    (["UPDATE events SET seq = -1 WHERE seq = 60", "UPDATE events SET seq = 60 WHERE seq = 61",
      "UPDATE events SET seq = 61 WHERE seq = -1"], "hash chain broken at seq 60"),
])
def test_verify_finds_the_first_tampered_event(demo_db: str, cli, statements: list[str],
                                               finding: str) -> None:
    raw(demo_db, *statements)
    result = cli("verify", db=demo_db)
    assert result.code == 1
    assert finding in result.err


@pytest.mark.parametrize("statement, finding", [
    ("UPDATE documents SET title = 'changed behind the log' WHERE id = "
     "(SELECT MIN(id) FROM documents)", "differs from the log"),
    ("INSERT INTO placeholders (uuid, version, \"key\", value, description) VALUES "
     "('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'forged', '', '')",
     "placeholder aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa is in the tables but not in the log"),
    ("DELETE FROM placeholders WHERE \"key\" = 'watermark'", "is in the log but not in the tables"),
])
def test_verify_finds_projection_rows_changed_behind_the_log(demo_db: str, cli, statement: str,
                                                             finding: str) -> None:
    raw(demo_db, statement)
    result = cli("verify", db=demo_db)
    assert result.code == 1 and finding in result.err


# A snapshot of tables changed behind the log's back: tests/test_integrity.py.


def test_a_rewritten_chain_is_caught_only_against_a_kept_head(demo_db: str, cli,
                                                              tmp_path: Path) -> None:
    kept = json.loads(cli("status", "--json", db=demo_db).out)["head_hash"]
    assert cli("verify", "--expect-head", kept, db=demo_db).code == 0
    # A forger with write access rewrites history and recomputes every hash after it: the
    # chain is internally consistent again, so only the head kept elsewhere can tell.
    from eventvault import store
    from eventvault.events import chain_hash, event_id

    vault = Vault(demo_db)
    with vault.reading() as connection:
        events = list(store.read_events(connection))
    forged = [events[0]._replace(reason="rewritten"), *events[1:]]
    previous = bytes(32)
    statements = []
    for event in forged:
        previous = chain_hash(previous, event.record())
        statements.append(
            f"UPDATE events SET reason = {repr(event.reason) if event.reason else 'NULL'}, "
            f"record = {hex_literal(demo_db, event.record())}, "
            f"hash = {hex_literal(demo_db, previous)}, event_id = '{event_id(previous)}' "
            f"WHERE seq = {event.seq}")
    # ... and the state maintained with the log's head (the digest itself is unchanged).
    statements.append(f"UPDATE log_state SET head_hash = {hex_literal(demo_db, previous)}")
    raw(demo_db, *statements)
    assert cli("verify", db=demo_db).code == 0
    result = cli("verify", "--expect-head", kept, db=demo_db)
    assert result.code == 1 and f"not the expected {kept}" in result.err
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    assert cli("verify", str(package), "--expect-head", kept).code == 1


def hex_literal(db: str, value: bytes) -> str:
    return f"'\\x{value.hex()}'::bytea" if db.startswith("postgresql") else f"X'{value.hex()}'"


# --- permissions -------------------------------------------------------------------------

@pytest.mark.parametrize("actor, args, allowed", [
    ("author01", ["user", "add", "x1"], False),
    ("reviewer01", ["document", "add", "T", "--author", "reviewer01"], False),
    ("viewer01", ["workflow", "start", "DOC"], False),
    ("author01", ["workflow", "start", "DOC"], False),
    ("reviewer01", ["workflow", "start", "DOC"], True),
    ("author02", ["document", "update", "DOC", "--set", "title=not mine"], False),
    ("author01", ["document", "update", "DOC", "--set", "title=mine"], True),
    ("author01", ["user", "update", "author01", "--set", "role=admin"], False),
    ("admin", ["user", "update", "viewer01", "--set", "role=reviewer"], True),
    ("author01", ["reinit", "--yes"], False),
])
def test_roles_decide_and_refusals_are_recorded(demo_db: str, cli, actor: str,
                                                args: list[str], allowed: bool) -> None:
    documents = [json.loads(line) for line in cli("export", db=demo_db).lines
                 if '"type":"document"' in line]
    users = {json.loads(line)["fields"]["username"]: json.loads(line)["uuid"]
             for line in cli("export", db=demo_db).lines if '"type":"user"' in line}
    own = next(d["uuid"] for d in documents if d["fields"]["author"] == users["author01"])
    args = [own if word == "DOC" else word for word in args]
    before = json.loads(cli("status", "--json", db=demo_db).out)
    result = cli(*args, "--as", actor, db=demo_db)
    after = json.loads(cli("status", "--json", db=demo_db).out)
    if allowed:
        assert result.code == 0, result.err
        return
    assert result.code == 1 and "may not" in result.err
    assert after["state_digest"] == before["state_digest"]
    assert after["head_seq"] == before["head_seq"] + 1
    trail = cli("audit", "actor", actor, "--json", "--limit", "0", db=demo_db)
    last = json.loads(trail.lines[-1])
    assert last["event_type"] == "access_denied"
    assert last["command"].startswith("eventvault " + args[0])
