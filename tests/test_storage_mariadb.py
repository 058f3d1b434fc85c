"""The storage contract on MariaDB, and what only MariaDB has: a least-privilege writer
account (`init --writer-role`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import MARIADB_SERVER, Result, mariadb_database, ok, run_cli
from sqlalchemy import Engine, create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from storage_contract import StorageContract

from eventvault.storage import mariadb as mariadb_storage


class TestMariaDBStorage(StorageContract):
    engine = "mariadb"


@pytest.fixture
def writer_account() -> Iterator[tuple[str, str, str]]:
    """A fresh database and an account of its own: (owner URL, account, writer URL).
    Accounts are server-wide: a unique name, dropped afterwards with its grants."""
    name = f"evwriter_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    with mariadb_database() as owner_url:
        server = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.execute(text(f"CREATE USER `{name}`@`%` IDENTIFIED BY '{password}'"))
        try:
            writer_url = make_url(owner_url).set(username=name, password=password)
            yield owner_url, name, writer_url.render_as_string(hide_password=False)
        finally:
            with server.connect() as connection:
                connection.execute(text(f"DROP USER IF EXISTS `{name}`@`%`"))
            server.dispose()


def refused(result: Result) -> bool:
    return result.code != 0 and result.err.count("\n") == 1


def test_a_writer_account_writes_but_cannot_rewrite_the_log(
        writer_account: tuple[str, str, str], tmp_path: Path) -> None:
    owner_url, account, writer_url = writer_account
    ok("init", "--writer-role", account, db=owner_url)
    ok("demo", db=owner_url)
    document = json.loads(next(line for line in ok("export", db=writer_url).lines
                               if '"type":"document"' in line))["uuid"]
    package = tmp_path / "w.evpkg"
    for args in (["user", "add", "wendy", "--as", "admin"],
                 ["document", "update", document, "--set", "title=By the writer", "--as",
                  "admin"],
                 ["snapshot", "-o", str(package)], ["verify"], ["status"]):
        ok(*args, db=writer_url)
    last = json.loads(ok("audit", "log", "--json", "--limit", "0", db=writer_url).lines[-1])
    assert last["principal"]["db"] == account
    engine = create_engine(writer_url)
    try:
        for statement in ("UPDATE events SET reason = 'x'", "DELETE FROM events",
                          "TRUNCATE events", "DROP TRIGGER events_no_update",
                          "DROP TABLE events_truncate_guard",
                          "ALTER TABLE events ADD COLUMN x int",
                          "CREATE TRIGGER mine BEFORE INSERT ON events FOR EACH ROW SET @x = 1",
                          "UPDATE log_state SET head_seq = 1; DELETE FROM log_state"):
            with engine.connect() as connection, pytest.raises(sa_exc.DBAPIError) as raised:
                for part in statement.split("; "):
                    connection.execute(text(part))
            assert "denied" in str(raised.value), statement
    finally:
        engine.dispose()
    assert refused(run_cli("reinit", "--yes", "--as", "admin", db=writer_url))
    assert refused(run_cli("replay", "--replace", "--as", "admin", str(package),
                           "--safety-snapshot", str(tmp_path / "refused.evpkg"), db=writer_url))
    ok("verify", db=owner_url)
    # The owner's replace swaps in new tables under the old names: the grants, which MariaDB
    # keeps by name, hold for them.
    ok("replay", "--replace", "--as", "admin", str(package),
       "--safety-snapshot", str(tmp_path / "safety.evpkg"), db=owner_url)
    ok("user", "add", "walter", "--as", "admin", db=writer_url)
    ok("verify", db=writer_url)


def test_a_writer_account_must_exist_and_must_not_be_the_owner(make_db) -> None:
    url = make_db("mariadb")
    missing = run_cli("init", "--writer-role", f"nobody_{uuid.uuid4().hex[:8]}", db=url)
    assert missing.code == 2 and "no MariaDB account" in missing.err
    assert missing.err.count("\n") == 1
    owner = make_url(url).username
    itself = run_cli("init", "--writer-role", f"{owner}@127.0.0.1", db=url)
    assert itself.code == 2 and "owns the vault" in itself.err


READINGS = '''
name = "lab"
version = 1

[[types]]
name = "reading"
table = "readings"
natural_key = ["name"]
fields = [{ name = "name", kind = "str" }, { name = "value", kind = "float" },
          { name = "scale", kind = "float", default = 1.5 },
          { name = "note", kind = "float", required = false }]
'''


def float_columns(engine: Engine) -> list[tuple[str, str, str, str | None]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(  # type: ignore[misc]
            "SELECT column_name, data_type, is_nullable, column_default FROM "
            "information_schema.columns WHERE table_schema = DATABASE() AND table_name = "
            "'readings' AND column_name <> 'name' AND data_type IN ('float', 'double') "
            "ORDER BY column_name"))]


def test_a_float_column_as_0_3_0_made_it_is_repaired_by_rebuild(
        make_db: Callable[[str], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0.3.0 gave a declared float field a FLOAT column on MariaDB (single precision: 1/3 read
    back 0.333333). Such a vault's tables drift from its log; `rebuild`, the repair that
    verify names, widens the column to DOUBLE and rewrites the rows from the log."""
    db = make_db("mariadb")
    schema = tmp_path / "lab.toml"
    schema.write_text(READINGS)
    ok("init", "--schema", str(schema), db=db)
    third = repr(1 / 3)
    ok("entity", "add", "reading", "--set", "name=a", "--set", f"value={third}",
               "--as", "admin", db=db)
    ok("entity", "add", "reading", "--set", "name=b", "--set", f"value={third}",
       "--set", f"note={third}", "--as", "admin", db=db)
    engine = create_engine(db)
    today = float_columns(engine)
    with engine.begin() as connection:  # what 0.3.0 created, and its rounded values
        for column, _kind, nullable, default in today:
            connection.execute(text(
                f"ALTER TABLE readings MODIFY {column} FLOAT"
                + (" NOT NULL" if nullable == "NO" else " NULL")
                + (f" DEFAULT {default}" if default not in (None, "NULL") else "")))
    assert {kind for _, kind, _, _ in float_columns(engine)} == {"float"}
    drifted = run_cli("verify", db=db)
    assert drifted.code != 0 and "rebuild" in drifted.out + drifted.err
    # A reader's open transaction holds the table: the ALTER waits, then gives up in one line.
    monkeypatch.setattr(mariadb_storage, "ALTER_WAIT", 1)
    with engine.connect() as reader:
        reader.execute(text("START TRANSACTION"))
        reader.execute(text("SELECT count(*) FROM readings")).scalar()
        busy = run_cli("rebuild", "--as", "admin", db=db)
        reader.execute(text("ROLLBACK"))
    assert busy.code != 0 and busy.err.count("\n") == 1 and "being read" in busy.err, busy.err
    ok("rebuild", "--as", "admin", db=db)
    ok("verify", db=db)
    for name in ("a", "b"):
        shown = json.loads(ok("entity", "show", f"reading:{name}", "--json", db=db).out)
        assert shown["fields"]["value"] == 1 / 3
    assert shown["fields"]["note"] == 1 / 3
    assert float_columns(engine) == today  # DOUBLE, nullability and defaults as made today
    engine.dispose()
