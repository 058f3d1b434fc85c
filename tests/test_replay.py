"""Snapshot and replay: the story end to end, across engines, and every way a restore must fail.

A failed restore must leave the target exactly as it was; a successful one must bring back
every entity with every reference pointing at the same entity as before.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgpack
import pytest
from conftest import ENGINES
from sqlalchemy import create_engine, text

from eventvault.errors import EventVaultError
from eventvault.events import (
    GENESIS_HASH,
    chain_hash,
    encode_record,
    event_from_record,
    now_us,
    pack_payload,
)
from eventvault.fold import StateFold
from eventvault.package import PackageHeader, PackageReader, PackageWriter
from eventvault.snapshot import snapshot
from eventvault.vault import Vault

# The module, not the function `eventvault.replay` that the package exports under its name.
replay_module = importlib.import_module("eventvault.replay")


def export_lines(cli, db: str, *, without_restore_jobs: bool = True) -> list[str]:
    result = cli("export", db=db)
    assert result.code == 0, result.err
    return [line for line in result.lines
            if not (without_restore_jobs and '"type":"restore_job"' in line)]


def counts(cli, db: str) -> dict[str, int]:
    return json.loads(cli("status", "--json", db=db).out)["counts"]


def ids_by_uuid(db: str, table: str) -> dict[str, int]:
    engine = create_engine(db)
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT uuid, id FROM {table}")).all()
    engine.dispose()
    return dict(rows)


def references(db: str) -> set[tuple[str, str, str]]:
    """(document uuid, author uuid, reviewer uuid) and (workflow, document, state) by joins."""
    engine = create_engine(db)
    with engine.connect() as connection:
        documents = connection.execute(text(
            "SELECT d.uuid, a.uuid, r.uuid FROM documents d JOIN users a ON a.id = d.author_id "
            "JOIN users r ON r.id = d.reviewer_id")).all()
        workflows = connection.execute(text(
            "SELECT w.uuid, d.uuid, s.name FROM workflows w JOIN documents d ON d.id = "
            "w.document_id JOIN workflow_states s ON s.id = w.current_state_id")).all()
    engine.dispose()
    return {tuple(row) for row in documents} | {tuple(row) for row in workflows}


def test_the_story_survives_a_reinit(db_url: str, cli, tmp_path: Path) -> None:
    db = db_url
    assert cli("init", db=db).code == 0
    # Make the source's integer IDs differ from what a fresh database hands out: users that
    # exist while the demo runs and are deleted afterwards leave gaps a replay does not.
    for n in range(7):
        assert cli("user", "add", f"temp{n}", "--as", "admin", db=db).code == 0
    assert cli("demo", db=db).code == 0
    for n in range(7):
        assert cli("user", "delete", f"temp{n}", "--as", "admin", db=db).code == 0
    before = export_lines(cli, db)
    source_ids = ids_by_uuid(db, "users")
    source_references = references(db)
    package = tmp_path / "story.evpkg"
    assert cli("snapshot", "-o", str(package), db=db).code == 0

    assert cli("reinit", "--yes", "--as", "admin", db=db).code == 0
    after_reinit = counts(cli, db)
    assert [after_reinit[t] for t in ("user", "document", "workflow", "placeholder",
                                      "backup_config")] == [2, 0, 0, 32, 14]

    # A vault holding only what init creates would be filled as it is
    # (test_a_freshly_reinitialised_vault_takes_a_replay_without_replace); one user more
    # is data of its own, which only --replace may overwrite.
    assert cli("user", "add", "visitor", "--as", "admin", db=db).code == 0
    after_reinit = counts(cli, db)
    refused = cli("replay", str(package), db=db)
    assert refused.code == 1
    assert "target vault is not empty (3 users" in refused.err
    assert "use --replace" in refused.err
    assert counts(cli, db) == after_reinit

    safety = tmp_path / "safety.evpkg"
    restored = cli("replay", str(package), "--replace", "--safety-snapshot", str(safety),
                   "--as", "admin", db=db)
    assert restored.code == 0, restored.err
    assert "verified against" in restored.out and safety.exists()
    after = counts(cli, db)
    assert [after[t] for t in ("user", "document", "workflow", "placeholder",
                               "backup_config")] == [10, 5, 4, 32, 14]
    assert export_lines(cli, db) == before
    assert references(db) == source_references
    target_ids = ids_by_uuid(db, "users")
    assert set(target_ids) == set(source_ids)
    assert any(target_ids[u] != source_ids[u] for u in source_ids)
    # The restore is itself on the record, and the vault checks out.
    assert after["restore_job"] == 2
    assert cli("verify", db=db).code == 0
    # The safety snapshot holds what was replaced: the reinitialised vault.
    assert cli("verify", str(safety)).code == 0


def test_across_engines_exports_stay_identical(cli, make_db, tmp_path: Path) -> None:
    source, middle, last = make_db("sqlite"), make_db("postgresql"), make_db("sqlite")
    assert cli("init", db=source).code == 0 and cli("demo", db=source).code == 0
    first = tmp_path / "first.evpkg"
    second = tmp_path / "second.evpkg"
    assert cli("snapshot", "-o", str(first), db=source).code == 0
    assert cli("replay", str(first), db=middle).code == 0
    assert cli("snapshot", "-o", str(second), db=middle).code == 0
    assert cli("replay", str(second), db=last).code == 0
    assert export_lines(cli, source) == export_lines(cli, middle) == export_lines(cli, last)
    assert references(source) == references(middle) == references(last)
    assert counts(cli, last)["restore_job"] == counts(cli, source)["restore_job"] + 2
    # The chain continues across both restores: the last vault still verifies from seq 1.
    assert cli("verify", db=last).code == 0


@pytest.mark.parametrize("source_engine", ENGINES)
def test_a_package_from_any_engine_replays_into_every_engine(
        cli, make_db, tmp_path: Path, source_engine: str) -> None:
    """Every (source, target) pair of the three engines: the same export, the same references
    by UUID, a chain that verifies, and a package of the target identical in its events."""
    source = make_db(source_engine)
    assert cli("init", db=source).code == 0 and cli("demo", db=source).code == 0
    assert cli("user", "update", "author01", "--set", "email=Ünïcode 🗝 <a@b>", "--as",
               "admin", db=source).code == 0
    package = tmp_path / "source.evpkg"
    assert cli("snapshot", "-o", str(package), db=source).code == 0
    for target_engine in ENGINES:
        target = make_db(target_engine)
        restored = cli("replay", str(package), db=target)
        assert restored.code == 0, (target_engine, restored.err)
        assert export_lines(cli, target) == export_lines(cli, source), target_engine
        assert references(target) == references(source), target_engine
        assert cli("verify", "--against", str(package), db=target).code == 0, target_engine


def test_incremental_packages_chain_and_refuse_gaps(demo_db: str, cli, make_db,
                                                    tmp_path: Path) -> None:
    base, step1, step2 = (tmp_path / f"{n}.evpkg" for n in ("base", "step1", "step2"))
    assert cli("snapshot", "-o", str(base), db=demo_db).code == 0
    assert cli("user", "add", "inc1", "--as", "admin", db=demo_db).code == 0
    assert cli("snapshot", "-o", str(step1), "--since", str(base), db=demo_db).code == 0
    assert cli("user", "add", "inc2", "--as", "admin", db=demo_db).code == 0
    assert cli("snapshot", "-o", str(step2), "--since", str(step1), db=demo_db).code == 0

    target = make_db("sqlite")
    missing = cli("replay", str(base), str(step2), db=target)
    assert missing.code == 1 and "missing or out of order" in missing.err
    disorder = cli("replay", str(base), str(step2), str(step1), db=target)
    assert disorder.code == 1
    alone = cli("replay", str(step1), db=target)
    assert alone.code == 1 and "incremental" in alone.err
    assert not Path(target.removeprefix("sqlite:///")).exists()

    assert cli("verify", str(base), str(step1), str(step2)).code == 0
    assert cli("replay", str(base), str(step1), str(step2), db=target).code == 0
    assert export_lines(cli, target) == export_lines(cli, demo_db)


def test_dry_run_checks_everything_and_writes_nothing(demo_db: str, cli, make_db,
                                                      tmp_path: Path) -> None:
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    fresh = make_db("sqlite")
    result = cli("replay", str(package), "--dry-run", db=fresh)
    assert result.code == 0, result.err
    assert "dry run: would restore" in result.out
    assert not Path(fresh.removeprefix("sqlite:///")).exists()
    before = json.loads(cli("status", "--json", db=demo_db).out)
    replaced = cli("replay", str(package), "--replace", "--dry-run", "--as", "admin", db=demo_db)
    assert replaced.code == 0, replaced.err
    assert json.loads(cli("status", "--json", db=demo_db).out) == before


def test_replace_needs_an_admin(demo_db: str, cli, tmp_path: Path) -> None:
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    before = json.loads(cli("status", "--json", db=demo_db).out)
    result = cli("replay", str(package), "--replace", "--as", "author01", db=demo_db)
    assert result.code == 1 and "may not replace the vault" in result.err
    after = json.loads(cli("status", "--json", db=demo_db).out)
    assert after["state_digest"] == before["state_digest"]
    assert after["head_seq"] == before["head_seq"] + 1  # the refusal is on the record
    assert not list(tmp_path.glob("eventvault-safety-*"))


# --- hand-built packages -----------------------------------------------------------------

def write_package(path: Path, events: list[tuple], *, frame_events: int = 4096,
                  recorded_digest: str | None = None) -> None:
    """Events as (entity_type, entity_id, version, event_type, fields[, schema_version]);
    `recorded_digest` the state digest the footer claims, if not the events' own."""
    header = PackageHeader(1, "0001", "00000000-0000-4000-8000-000000000000", 0,
                           GENESIS_HASH, now_us())
    previous, at = GENESIS_HASH, now_us()
    actor = "00000000-0000-4000-8000-00000000000a"
    fold = StateFold()
    with PackageWriter(path, header, frame_events=frame_events) as writer:
        for seq, (etype, eid, version, kind, fields, *schema) in enumerate(events, start=1):
            record = encode_record(seq, etype, eid, version, kind, schema[0] if schema else 1,
                                   actor, None, at + seq, pack_payload(fields))
            previous = chain_hash(previous, record)
            writer.add(seq, at + seq, record, previous)
            with contextlib.suppress(EventVaultError):  # bad events are what some tests want
                fold.apply(event_from_record(msgpack.unpackb(record), previous))
        writer.finish(dict(fold.counts), recorded_digest or fold.digest())


def many_events(users: int, documents: int) -> list[tuple]:
    """A valid history: users, then documents by them (for packages that take a while)."""
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(users)]
    events = [("user", ids[n], 1, "created", {"username": f"user{n}" if n else "system",
                                              "role": "author" if n else "admin",
                                              "active": True, "email": ""}) for n in range(users)]
    events += [("document", str(uuid.UUID(int=(1 << 64) + n, version=4)), 1, "created",
                {"title": f"Document {n}", "author": ids[n % users], "status": "draft"})
               for n in range(documents)]
    return events


USER = "11111111-1111-4111-8111-111111111111"
MISSING = "99999999-9999-4999-8999-999999999999"
DOC = "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize("bad_event, message", [
    (("document", DOC, 1, "created", {"title": "T", "author": MISSING}),
     f"seq 2: document {DOC} field 'author' refers to user {MISSING}"),
    (("document", DOC, 1, "renamed", {"title": "T"}), "seq 2: unknown event type 'renamed'"),
    (("gadget", DOC, 1, "created", {"title": "T"}), "seq 2: unknown entity type 'gadget'"),
    (("document", DOC, 1, "created", {"title": "T", "author": USER}, 9),
     "seq 2: schema version 9 is not known"),
])
def test_a_bad_event_refuses_the_whole_package(db_url: str, cli, tmp_path: Path,
                                               bad_event: tuple, message: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where the safety snapshot goes, without --safety-snapshot
    package = tmp_path / "bad.evpkg"
    user = ("user", USER, 1, "created", {"username": "u", "role": "admin", "active": True,
                                         "email": ""})
    write_package(package, [user, bad_event])
    assert cli("init", db=db_url).code == 0
    before = export_lines(cli, db_url, without_restore_jobs=False)
    replaced = cli("replay", str(package), "--replace", "--as", "admin", db=db_url)
    assert replaced.code == 1
    assert message in replaced.err and len(replaced.err.strip().splitlines()) == 1
    # The safety snapshot taken before the replay found the bad event is not left behind.
    assert "the vault is unchanged and its safety snapshot eventvault-safety-" in replaced.err
    assert "was removed" in replaced.err
    assert not list(tmp_path.glob("eventvault-safety-*"))
    assert export_lines(cli, db_url, without_restore_jobs=False) == before
    assert cli("verify", str(package)).code == 1


# --- corruption --------------------------------------------------------------------------

@pytest.fixture
def small_package(tmp_path: Path) -> Path:
    vault = Vault(f"sqlite:///{tmp_path / 'small.db'}")
    vault.init()
    path = tmp_path / "small.evpkg"
    snapshot(vault, path, frame_events=16)  # 54 events in 4 frames
    vault.close()
    return path


def test_every_flipped_byte_is_caught_by_verify(small_package: Path, cli,
                                                tmp_path: Path) -> None:
    from eventvault.verify import verify_packages

    good = small_package.read_bytes()
    damaged = tmp_path / "damaged.evpkg"
    assert verify_packages([small_package]).ok
    for position in range(len(good)):
        damaged.write_bytes(good[:position] + bytes([good[position] ^ 0xFF]) + good[position + 1:])
        report = verify_packages([damaged])
        assert not report.ok, f"flipped byte {position} went unnoticed"
    for length in range(len(good)):
        damaged.write_bytes(good[:length])
        assert not verify_packages([damaged]).ok, f"truncation to {length} went unnoticed"


def test_damaged_packages_are_refused_by_replay_leaving_the_target_alone(
    small_package: Path, cli, make_db, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # where a safety snapshot would go
    good = small_package.read_bytes()
    damaged = tmp_path / "damaged.evpkg"
    target = make_db("sqlite")
    assert cli("init", db=target).code == 0
    before = export_lines(cli, target, without_restore_jobs=False)
    rng = random.Random(7)
    positions = [*sorted(rng.sample(range(len(good)), 25)), 0, len(good) - 1]
    for position in positions:
        damaged.write_bytes(good[:position] + bytes([good[position] ^ 0x5A]) + good[position + 1:])
        result = cli("replay", str(damaged), "--replace", "--as", "admin", db=target)
        assert result.code == 1, f"byte {position}: {result.out}"
        assert result.err.startswith("eventvault: ") and len(result.err.splitlines()) == 1
        assert "Traceback" not in result.err
        # Found before the target was touched: no safety snapshot was written at all.
        assert "safety snapshot" not in result.err, result.err
        assert not list(tmp_path.glob("eventvault-safety-*"))
    for length in (0, 10, len(good) // 2, len(good) - 1):
        damaged.write_bytes(good[:length])
        assert cli("replay", str(damaged), "--replace", "--as", "admin", db=target).code == 1
    assert export_lines(cli, target, without_restore_jobs=False) == before
    directory = cli("replay", str(tmp_path), db=target)
    assert directory.code == 1 and "directory" in directory.err


def test_a_fold_that_misses_an_event_fails_the_replay(
        demo_db: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Copy and fold share one pass, so they see the same events; the replay still checks that
    # the fold ended where the copy did before it trusts the fold's state.
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    apply = StateFold.apply

    def apply_all_but_the_last(self: StateFold, event) -> None:
        if event[0] < head:  # an Event or, in a replay, a record's fields: seq first
            apply(self, event)

    head = PackageReader(package).footer.head_seq
    monkeypatch.setattr(StateFold, "apply", apply_all_but_the_last)
    target = tmp_path / "target.db"
    result = cli("replay", str(package), db=f"sqlite:///{target}")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert f"the fold ended at seq {head - 1}, the copy at {head}" in result.err
    assert not target.exists()


def test_a_package_whose_recorded_state_is_wrong_fails_the_replay(cli, tmp_path: Path) -> None:
    # Sound events, but the footer claims another state: the restored tables are compared
    # with the package's claim directly (the fold computes no digest of its own then).
    package = tmp_path / "p.evpkg"
    write_package(package, many_events(3, 5), recorded_digest="1" * 64)
    target = tmp_path / "target.db"
    result = cli("replay", str(package), db=f"sqlite:///{target}")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert f"replayed state at seq 8 does not match {package}'s head" in result.err
    assert not target.exists()


@pytest.mark.parametrize("until, message", [
    (None, "replayed state at seq 8 does not match"),  # the package's head: its digest
    (7, "the restored tables do not match the replayed events"),  # no state recorded: fold's
])
def test_tables_that_differ_from_the_events_fail_the_replay(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, until: int | None,
        message: str) -> None:
    package = tmp_path / "p.evpkg"
    write_package(package, many_events(3, 5))
    rows = replay_module.projection_rows

    def one_title_changed(fold: StateFold, **options):
        for type_name, chunk in rows(fold, **options):
            if type_name == "document":  # (id, uuid, version, title, ...)
                chunk[0] = (*chunk[0][:3], "not the logged title", *chunk[0][4:])
            yield type_name, chunk

    monkeypatch.setattr(replay_module, "projection_rows", one_title_changed)
    target = tmp_path / "target.db"
    seq = ("--seq", str(until)) if until else ()
    result = cli("replay", str(package), *seq, db=f"sqlite:///{target}")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert message in result.err
    assert not target.exists()
    monkeypatch.undo()  # the same replay without the change restores
    assert cli("replay", str(package), *seq, db=f"sqlite:///{target}").code == 0


def test_sigkill_mid_replay_leaves_the_target_unchanged(cli, make_db, tmp_path: Path) -> None:
    package = tmp_path / "big.evpkg"
    write_package(package, many_events(2_000, 120_000))
    target = make_db("sqlite")
    assert cli("init", db=target).code == 0
    assert cli("user", "add", "only-here", "--as", "admin", db=target).code == 0
    before = export_lines(cli, target, without_restore_jobs=False)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {**os.environ, "EVENTVAULT_DB": target, "TMPDIR": str(temporary)}
    # Without --safety-snapshot each attempt writes its own, named by the time, in cwd.
    command = [sys.executable, "-m", "eventvault", "replay", str(package), "--replace",
               "--as", "system"]  # an admin both of the target and of the package
    rng = random.Random(11)
    killed_mid_way = 0
    for _ in range(6):
        process = subprocess.Popen(command, env=environment, cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.5, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.returncode == -signal.SIGKILL:
            killed_mid_way += 1
            assert export_lines(cli, target, without_restore_jobs=False) == before
            assert cli("verify", db=target).code == 0
        else:
            pytest.fail(f"replay ended before the kill: {process.stderr.read().decode()}")
    assert killed_mid_way == 6
    assert not any(temporary.iterdir())  # no temporary file left behind either
    # And the package itself was sound all along: uninterrupted, the replay succeeds.
    assert subprocess.run(command, env=environment, cwd=tmp_path).returncode == 0
    assert counts(cli, target)["document"] == 120_000


def test_a_locked_sqlite_vault_waits_then_fails_in_one_line(
        make_db, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    demo_db = make_db("sqlite")
    assert cli("init", db=demo_db).code == 0 and cli("demo", db=demo_db).code == 0
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    monkeypatch.setenv("EVENTVAULT_BUSY_TIMEOUT", "0.5")
    before = export_lines(cli, demo_db, without_restore_jobs=False)
    other = sqlite3.connect(demo_db.removeprefix("sqlite:///"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        safety = tmp_path / "safety.evpkg"
        result = cli("replay", str(package), "--replace", "--safety-snapshot", str(safety),
                     "--as", "admin", db=demo_db)
    finally:
        other.close()
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1, result.err
    assert "is locked by another connection (waited 0.5 s; EVENTVAULT_BUSY_TIMEOUT" in result.err
    assert "internal error" not in result.err and not safety.exists()
    assert export_lines(cli, demo_db, without_restore_jobs=False) == before


def terminate_other_backends(db: str) -> None:
    """What an administrator's pg_terminate_backend does to every other session of `db`."""
    engine = create_engine(db, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    engine.dispose()


def once(action, original):
    """`original`, with `action` run before its first call."""
    done: list[bool] = []

    def wrapper(*args, **kwargs):
        if not done:
            done.append(True)
            action()
        return original(*args, **kwargs)

    return wrapper


def test_a_connection_terminated_mid_replay_fails_in_one_line(
        make_db, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventvault import store

    db = make_db("postgresql")
    assert cli("init", db=db).code == 0 and cli("demo", db=db).code == 0
    package, safety = tmp_path / "p.evpkg", tmp_path / "safety.evpkg"
    assert cli("snapshot", "-o", str(package), db=db).code == 0
    before = export_lines(cli, db, without_restore_jobs=False)
    monkeypatch.setattr(store, "insert_records",
                        once(lambda: terminate_other_backends(db), store.insert_records))
    result = cli("replay", str(package), "--replace", "--safety-snapshot", str(safety),
                 "--as", "admin", db=db)
    assert result.code == 1
    line = result.err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, result.err
    assert "lost the connection to database" in line and "cannot open" not in line
    assert "safety snapshot" in line and not safety.exists()
    monkeypatch.undo()
    assert export_lines(cli, db, without_restore_jobs=False) == before


def test_a_connection_terminated_mid_snapshot_fails_in_one_line(
        make_db, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventvault import codec, store

    db = make_db("postgresql")
    assert cli("init", db=db).code == 0 and cli("demo", db=db).code == 0
    monkeypatch.setattr(store, "READ_BATCH", 10)  # the next fetch finds the session gone
    monkeypatch.setattr(codec, "from_stored",
                        once(lambda: terminate_other_backends(db), codec.from_stored))
    result = cli("snapshot", "-o", str(tmp_path / "p.evpkg"), db=db)
    assert result.code == 1
    line = result.err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, result.err
    assert "lost the connection to database" in line and "cannot open" not in line
    assert list(tmp_path.iterdir()) == []  # no package, no temporary file
