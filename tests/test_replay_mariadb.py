"""Replay onto MariaDB, whose DDL commits by itself: the new vault is built in a database
beside the target and swapped in by one atomic RENAME TABLE. A replay that fails leaves the
target's tables, triggers and rows exactly as they were; readers see the old vault or the new
one, never half of either."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import ok, run_cli
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from test_replay import export_lines, many_events, write_package

from eventvault import vault_tables
from eventvault.package import PackageWriter


def fingerprint(url: str) -> dict[str, object]:
    """Everything a replay could change: tables and their definitions, triggers, a checksum
    of every table's rows, and any database beside the target."""
    database = make_url(url).database
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            names = sorted(connection.execute(text("SHOW TABLES")).scalars())
            return {
                "tables": {name: connection.execute(text(f"SHOW CREATE TABLE `{name}`")).one()[1]
                           for name in names},
                "rows": {name: connection.execute(text(f"CHECKSUM TABLE `{name}` EXTENDED"))
                         .one()[1] for name in names},
                "triggers": sorted(connection.execute(text(
                    "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                    "WHERE EVENT_OBJECT_SCHEMA = DATABASE()")).all()),
                "beside": connection.execute(text(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME LIKE :prefix"), {"prefix": f"{database}\\_\\_%"}
                ).scalars().all(),
            }
    finally:
        engine.dispose()


@pytest.fixture
def target(make_db) -> str:
    url = make_db("mariadb")
    ok("init", db=url)
    ok("demo", db=url)
    return url


@pytest.fixture
def package(make_db, tmp_path: Path) -> Path:
    """A package of another vault than the target's (SQLite: quick to build)."""
    source = make_db("sqlite")
    ok("init", db=source)
    ok("demo", db=source)
    ok("user", "add", "from-the-package", "--as", "admin", db=source)
    path = tmp_path / "other.evpkg"
    ok("snapshot", "-o", str(path), db=source)
    return path


def replace(url: str, package: Path, tmp_path: Path, *more: str):
    return run_cli("replay", str(package), "--replace", "--as", "admin", "--safety-snapshot",
                   str(tmp_path / "safety.evpkg"), *more, db=url)


def test_a_replace_swaps_the_whole_vault_and_keeps_it_guarded(
        target: str, package: Path, tmp_path: Path) -> None:
    ok("replay", str(package), "--replace", "--as", "admin", "--safety-snapshot",
       str(tmp_path / "safety.evpkg"), db=target)
    assert "from-the-package" in ok("export", db=target).out
    ok("verify", db=target)
    after = fingerprint(target)
    assert after["beside"] == []  # the databases the build and the swap used are gone
    assert "events__replay_old" not in after["tables"]  # type: ignore[operator]
    # The guard is the usual one, under its usual names, and refuses as before.
    assert after["triggers"] == [("events_no_delete", "events"), ("events_no_update", "events")]
    engine = create_engine(target)
    try:
        for statement in ("UPDATE events SET reason = 'x'", "DELETE FROM events",
                          "TRUNCATE events"):
            with engine.connect() as connection, pytest.raises(sa_exc.DBAPIError) as raised:
                connection.execute(text(statement))
            assert "append-only" in str(raised.value) or "foreign key" in str(raised.value)
    finally:
        engine.dispose()
    # A second replace finds a vault that was itself swapped in.
    ok("replay", str(tmp_path / "safety.evpkg"), "--replace", "--as", "admin",
       "--safety-snapshot", str(tmp_path / "safety2.evpkg"), db=target)
    assert "from-the-package" not in ok("export", db=target).out
    assert fingerprint(target)["triggers"] == after["triggers"]


def test_failing_replays_leave_the_target_exactly_as_it_was(
        target: str, package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = fingerprint(target)
    exported = export_lines(run_cli, target, without_restore_jobs=False)
    # A corrupt package: refused before anything is built.
    corrupt = tmp_path / "corrupt.evpkg"
    good = package.read_bytes()
    corrupt.write_bytes(good[:200] + bytes([good[200] ^ 0xFF]) + good[201:])
    # A package whose footer claims another state than its events fold to: found only
    # once the whole vault is built beside the target.
    lying = tmp_path / "lying.evpkg"
    finish = PackageWriter.finish
    with monkeypatch.context() as patch:
        patch.setattr(PackageWriter, "finish",
                      lambda self, counts, digest, schema=None: finish(self, counts, "0" * 64,
                                                                       schema))
        write_package(lying, many_events(3, 40))
    for bad, message in ((corrupt, "checksum mismatch"),
                         (lying, "the vault is unchanged and its safety snapshot")):
        result = replace(target, bad, tmp_path)
        assert result.code == 1 and message in result.err, result.err
        assert result.err.count("\n") == 1
        assert fingerprint(target) == before
    # The swap itself failing (a table it names is missing): MariaDB undoes the renames it
    # had made in that statement; the staged log and the built database are dropped.
    own_tables = vault_tables.own_tables
    monkeypatch.setattr(vault_tables, "own_tables",
                        lambda connection: own_tables(connection) | {"no_such_table"})
    result = replace(target, package, tmp_path)
    assert result.code == 1 and "no_such_table" in result.err and result.err.count("\n") == 1
    assert fingerprint(target) == before
    monkeypatch.undo()
    # A dry run builds and checks beside the target, and leaves it alone too.
    assert "dry run" in replace(target, package, tmp_path, "--dry-run").out
    assert fingerprint(target) == before
    assert export_lines(run_cli, target, without_restore_jobs=False) == exported
    ok("verify", db=target)


def test_readers_see_the_old_vault_or_the_new_never_half(
        target: str, package: Path, tmp_path: Path) -> None:
    old = json.loads(ok("status", "--json", db=target).out)["counts"]["user"]
    new_users = old + 1  # the package's vault has one user more
    seen: list[object] = []
    done = threading.Event()
    engine = create_engine(target)

    def read() -> None:
        while not done.is_set():
            try:
                with engine.connect() as connection:
                    seen.append(connection.execute(text("SELECT COUNT(*) FROM users")).scalar())
            except sa_exc.DBAPIError as error:  # a table missing: a vault half there
                seen.append(str(error.orig))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        ok("replay", str(package), "--replace", "--as", "admin", "--safety-snapshot",
           str(tmp_path / "safety.evpkg"), db=target)
    finally:
        done.set()
        reader.join()
        engine.dispose()
    assert seen and set(seen) <= {old, new_users}, set(seen) - {old, new_users}
    assert seen[-1] == new_users
