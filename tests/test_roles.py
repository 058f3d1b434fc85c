"""Roles that mean something: one choke point for the policy, the last admin, the principal
recorded beside the claimed actor, and a PostgreSQL writer role that cannot rewrite the log."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from conftest import postgres_database
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from eventvault.errors import PermissionDeniedError
from eventvault.events import decode_record, encode_record, pack_payload
from eventvault.vault import Vault

OS_USER = pwd.getpwuid(os.geteuid()).pw_name


def status(cli, db: str) -> dict:
    return json.loads(cli("status", "--json", db=db).out)


def last_event(cli, db: str) -> dict:
    return json.loads(cli("audit", "log", "--json", "--limit", "0", db=db).lines[-1])


# --- one choke point -------------------------------------------------------------------

def test_a_viewer_cannot_create_an_admin_through_the_library(demo_db: str, cli) -> None:
    before = status(cli, demo_db)
    with Vault(demo_db) as vault:
        # The generic commands, not only the CLI's add_user/update_user, go through the policy.
        with (
            pytest.raises(PermissionDeniedError, match=r"viewer01 .*may not create users"),
            vault.write("viewer01") as commands,
        ):
            commands.create("user", {"username": "mallory", "role": "admin",
                                     "email": "", "active": True})
        with (
            pytest.raises(PermissionDeniedError, match="may not change users"),
            vault.write("viewer01") as commands,
        ):
            commands.update("user", commands.find("viewer01", "user"), {"role": "admin"})
        with (
            pytest.raises(PermissionDeniedError, match=r"author01 .*not their own"),
            vault.write("author01") as commands,
        ):
            theirs = next(d for d in vault.export() if d["type"] == "document"
                          and d["fields"]["author"] != commands.actor.id)
            commands.update("document", commands.find(theirs["uuid"], "document"),
                            {"title": "mine now"})
    after = status(cli, demo_db)
    assert after["state_digest"] == before["state_digest"]
    assert after["head_seq"] == before["head_seq"] + 3  # three refusals on the record
    assert last_event(cli, demo_db)["event_type"] == "access_denied"
    assert cli("user", "add", "mallory", "--role", "admin", "--as", "viewer01",
               db=demo_db).code == 1
    assert "mallory" not in cli("export", db=demo_db).out


def test_the_last_active_admin_cannot_be_demoted_deactivated_or_deleted(demo_db: str,
                                                                        cli) -> None:
    # `system` is an admin too: demoting it leaves `admin`, which is allowed.
    assert cli("user", "update", "system", "--set", "role=viewer", "--as", "admin",
               db=demo_db).code == 0
    before = status(cli, demo_db)
    for change in ("role=viewer", "active=false"):
        refused = cli("user", "update", "admin", "--set", change, "--as", "admin", db=demo_db)
        assert refused.code == 1
        assert refused.err.count("\n") == 1 and "last active admin" in refused.err
    after = status(cli, demo_db)
    assert after["state_digest"] == before["state_digest"]
    assert after["head_seq"] == before["head_seq"] + 2  # each refusal recorded
    # With a second admin, the first may step down; the second is then the last.
    assert cli("user", "add", "boss", "--role", "admin", "--as", "admin", db=demo_db).code == 0
    assert cli("user", "update", "admin", "--set", "role=viewer", "--as", "boss",
               db=demo_db).code == 0
    with (  # deleting, through the generic command
        Vault(demo_db) as vault,
        pytest.raises(PermissionDeniedError, match="last active"),
        vault.write("boss") as commands,
    ):
        commands.delete("user", commands.find("boss", "user"))
    assert last_event(cli, demo_db)["event_type"] == "access_denied"
    assert cli("user", "update", "system", "--set", "role=admin", "--as", "boss",
               db=demo_db).code == 0
    assert cli("user", "delete", "boss", "--as", "system", db=demo_db).code == 0


# --- the authenticated principal -------------------------------------------------------

def test_every_event_records_the_authenticated_principal(demo_db: str, cli) -> None:
    assert cli("user", "add", "pat", "--as", "admin", db=demo_db).code == 0
    expected = {"os": OS_USER}
    if not demo_db.startswith("sqlite"):  # the engines with database accounts
        expected["db"] = make_url(demo_db).username
    log = [json.loads(line) for line in
           cli("audit", "log", "--json", "--limit", "0", db=demo_db).lines]
    assert all(event["principal"] == expected for event in log) and len(log) > 80
    table = cli("audit", "history", "user:pat", db=demo_db).lines
    assert "AUTHENTICATED" in table[1] and f"os {OS_USER}" in table[2]
    rows = cli("audit", "actor", "admin", "--csv", "--limit", "0", db=demo_db).lines
    assert "principal" in rows[0].split(",") and f'""os"":""{OS_USER}""' in rows[-1]


def test_records_without_a_principal_keep_their_bytes_and_hashes() -> None:
    payload = pack_payload({"title": "x"})
    old_fields = [7, "document", str(uuid.uuid4()), 1, "created", 1, str(uuid.uuid4()), None,
                  1_700_000_000_000_000, payload]
    old = msgpack.packb(old_fields, use_bin_type=True)  # a 0.1.0 record, by its definition
    assert encode_record(*old_fields) == old
    event = decode_record(old, hashlib.sha256(old).digest())
    assert event.principal is None and event.record() == old
    new = encode_record(*old_fields, {"os": "alice", "db": "writer"})
    decoded = decode_record(new, b"\0" * 32)
    assert decoded.principal == {"db": "writer", "os": "alice"} and decoded.record() == new
    with pytest.raises(ValueError):
        decode_record(encode_record(*old_fields)[:-1] + b"", b"\0" * 32)
    with pytest.raises(ValueError):  # an 11th element that is not a principal
        decode_record(msgpack.packb([*old_fields, 5], use_bin_type=True), b"\0" * 32)


def test_a_0_1_0_backup_replays_with_its_events_unattributed(db_url: str, cli) -> None:
    """Events of 0.1.0 carry no principal: restored as they were (the replay checks them
    against the package's head hash), the audit shows none for them, and the restore itself,
    recorded now, has one."""
    fixtures = Path(__file__).parent / "fixtures" / "v0.1.0"
    assert cli("replay", str(fixtures / "full.evpkg"), db=db_url).code == 0
    log = [json.loads(line) for line in
           cli("audit", "log", "--json", "--limit", "0", db=db_url).lines]
    *old, restore = log
    assert old and all(event["principal"] is None for event in old)
    assert restore["entity_type"] == "restore_job" and restore["principal"]["os"] == OS_USER
    table = cli("audit", "log", "--limit", "0", db=db_url).lines
    row = {line.split()[0]: line for line in table[1:] if line[:1].isdigit()}
    assert row[str(old[0]["seq"])].split()[3] == "-"
    assert f"os {OS_USER}" in row[str(restore["seq"])]
    assert cli("verify", db=db_url).code == 0  # old and new records on one chain


# --- PostgreSQL least privilege --------------------------------------------------------

@pytest.fixture
def writer_role() -> Iterator[tuple[str, str]]:
    """A fresh database and a login role of its own (roles are cluster-wide: a unique name,
    dropped afterwards with everything granted to it)."""
    role = f"evwriter_{uuid.uuid4().hex[:12]}"
    with postgres_database() as url:
        owner = create_engine(url, isolation_level="AUTOCOMMIT")
        with owner.connect() as connection:
            connection.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        try:
            yield url, role
        finally:
            with owner.connect() as connection:
                connection.execute(text(f'DROP OWNED BY "{role}"'))
            owner.dispose()
            server = create_engine(make_url(url).set(database="postgres"),
                                   isolation_level="AUTOCOMMIT")
            with server.connect() as connection:
                connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
            server.dispose()


def test_a_writer_role_writes_but_cannot_rewrite_the_log(writer_role, cli,
                                                         tmp_path: Path) -> None:
    owner_url, role = writer_role
    assert cli("init", "--writer-role", role, db=owner_url).code == 0
    assert cli("demo", db=owner_url).code == 0
    writer_url = make_url(owner_url).set(username=role).render_as_string(hide_password=False)
    document = json.loads(next(line for line in cli("export", db=writer_url).lines
                               if '"type":"document"' in line))["uuid"]
    for args in (["user", "add", "wendy", "--as", "admin"],
                 ["document", "update", document, "--set", "title=By the writer", "--as",
                  "admin"],
                 ["snapshot", "-o", str(tmp_path / "w.evpkg")], ["verify"], ["status"]):
        result = cli(*args, db=writer_url)
        assert result.code == 0, (args, result.err)
    assert last_event(cli, writer_url)["principal"]["db"] == role
    engine = create_engine(writer_url)
    try:
        for statement in ("UPDATE events SET reason = 'x'", "DELETE FROM events",
                          "TRUNCATE events", "DROP TRIGGER events_no_change ON events",
                          "ALTER TABLE events DISABLE TRIGGER ALL",
                          "ALTER TABLE events ADD COLUMN x int"):
            with engine.connect() as connection, pytest.raises(sa_exc.ProgrammingError) as e:
                connection.execute(text(statement))
            assert "permission denied" in str(e.value) or "must be owner" in str(e.value)
    finally:
        engine.dispose()
    # The owner's reinit is refused to the writer: it owns nothing it could drop.
    assert cli("reinit", "--yes", "--as", "admin", db=writer_url).code == 1
    assert cli("verify", db=owner_url).code == 0


def test_writer_role_is_a_usage_error_on_sqlite(cli, make_db) -> None:
    result = cli("init", "--writer-role", "someone", db=make_db("sqlite"))
    assert result.code == 2 and "PostgreSQL" in result.err and result.err.count("\n") == 1
