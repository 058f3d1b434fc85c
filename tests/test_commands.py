"""Domain commands through the CLI: init, reinit, demo, status, export and the write commands."""

from __future__ import annotations

import json

import pytest

from eventvault import schema
from eventvault.errors import UsageError, ValidationError
from eventvault.system import system_uuid
from eventvault.vault import Vault


def status(cli, db: str) -> dict:
    result = cli("status", "--json", db=db)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_init_is_idempotent_and_deterministic(cli, make_db) -> None:
    first, second = make_db("sqlite"), make_db("sqlite")
    assert cli("init", db=first).code == 0
    after_one = status(cli, first)
    assert cli("init", db=first).code == 0
    assert status(cli, first) == after_one
    assert after_one["counts"] == {
        "user": 2, "workflow_state": 6, "placeholder": 32, "backup_config": 14,
        "document": 0, "workflow": 0, "backup_job": 0, "restore_job": 0,
    }
    # Another installation creates the very same identities.
    assert cli("init", db=second).code == 0
    assert cli("export", db=first).out == cli("export", db=second).out
    assert status(cli, second)["state_digest"] == after_one["state_digest"]
    admin = cli("audit", "--help", db=first)  # the audit group is wired in
    assert admin.code == 0
    users = [json.loads(line) for line in cli("export", db=first).lines]
    assert {"admin", "system"} == {u["fields"]["username"] for u in users if u["type"] == "user"}
    assert system_uuid("user", "admin") in {u["uuid"] for u in users}


def test_status_json_shape(demo_db: str, cli) -> None:
    found = status(cli, demo_db)
    assert set(found) == {"vault_id", "url", "schema_revision", "head_seq", "head_hash",
                          "state_digest", "counts"}
    assert found["schema_revision"] == schema.head_revision()
    assert found["url"].split(":")[0] in ("sqlite", "postgresql+psycopg", "mysql+pymysql")
    assert isinstance(found["head_seq"], int) and len(found["head_hash"]) == 64
    assert found["counts"] == {
        "user": 10, "document": 5, "workflow": 4, "workflow_state": 6, "placeholder": 32,
        "backup_config": 14, "backup_job": 4, "restore_job": 1,
    }


def test_demo_data_references_real_entities(demo_db: str, cli) -> None:
    entities = [json.loads(line) for line in cli("export", db=demo_db).lines]
    by_uuid = {e["uuid"]: e for e in entities}
    states = set()
    for entity in entities:
        if entity["type"] == "document":
            assert by_uuid[entity["fields"]["author"]]["type"] == "user"
            assert by_uuid[entity["fields"]["reviewer"]]["type"] == "user"
        if entity["type"] == "workflow":
            assert by_uuid[entity["fields"]["document"]]["type"] == "document"
            states.add(by_uuid[entity["fields"]["current_state"]]["fields"]["name"])
        if entity["type"] == "restore_job":
            assert by_uuid[entity["fields"]["requested_by"]]["type"] == "user"
            assert by_uuid[entity["fields"]["backup_job"]]["type"] == "backup_job"
    assert len(states) == 4


def test_export_is_sorted_and_has_no_database_ids(demo_db: str, cli) -> None:
    lines = cli("export", db=demo_db).lines
    keys = [(e["type"], e["uuid"]) for e in map(json.loads, lines)]
    assert keys == sorted(keys)
    assert all(list(json.loads(line)) == ["type", "uuid", "fields"] for line in lines)
    assert '"id"' not in "".join(lines) and "_id" not in "".join(lines)


def test_reinit_is_the_story_reinit(demo_db: str, cli) -> None:
    assert cli("reinit", db=demo_db).code == 2  # needs --yes
    assert cli("reinit", "--yes", "--as", "author01", db=demo_db).code == 1
    assert cli("reinit", "--yes", db=demo_db).code == 2  # an explicit admin is required
    assert cli("reinit", "--yes", "--as", "admin", db=demo_db).code == 0
    counts = status(cli, demo_db)["counts"]
    assert [counts[t] for t in ("user", "document", "workflow", "placeholder", "backup_config")] \
        == [2, 0, 0, 32, 14]


def test_write_commands(demo_db: str, cli) -> None:
    db = demo_db
    added = cli("user", "add", "zoe", "--role", "author", "--as", "admin", db=db)
    assert added.code == 0, added.err
    document = cli("document", "add", "Zoe's notes", "--author", "zoe", "--as", "zoe", db=db)
    assert document.code == 0, document.err
    document_id = document.out.strip()
    changed = cli("document", "update", document_id, "--set", "title=Zoe's notes v2",
                  "--set", "reviewer=reviewer01", "--as", "zoe", db=db)
    assert changed.code == 0, changed.err
    workflow = cli("workflow", "start", document_id, "--assignee", "reviewer01",
                   "--as", "reviewer01", db=db).out.strip()
    assert cli("workflow", "move", workflow, "in_review", "--as", "reviewer01", db=db).code == 0
    entities = {e["uuid"]: e for e in map(json.loads, cli("export", db=db).lines)}
    assert entities[document_id]["fields"]["title"] == "Zoe's notes v2"
    assert entities[entities[workflow]["fields"]["current_state"]]["fields"]["name"] \
        == "in_review"
    # A deletion that nothing blocks.
    lone = cli("document", "add", "Scratch", "--author", "zoe", "--as", "zoe", db=db).out.strip()
    assert cli("document", "delete", lone, "--as", "zoe", db=db).code == 0
    assert lone not in cli("export", db=db).out


@pytest.mark.parametrize("args, code, message", [
    (["user", "add", "admin", "--as", "admin"], 1, "exists already"),
    (["user", "add", "x y", "--as", "admin"], 1, "invalid username"),
    (["user", "add", "bob", "--role", "boss", "--as", "admin"], 2, "boss"),
    (["document", "add", "T", "--author", "nobody"], 2, "no user 'nobody'"),
    (["document", "add", "T", "--author", "author01", "--as", "ghost"], 2, "unknown actor"),
    (["document", "add", "T", "--author", "author01", "--as", "viewer01"], 1, "may not"),
    (["document", "add", "T", "--author", "author02", "--as", "author01"], 1, "own"),
    (["document", "update", "not-a-uuid", "--set", "title=x"], 2, "give its UUID"),
    (["document", "update", "00000000-0000-0000-0000-000000000000", "--set", "title=x"], 2,
     "no document"),
    (["user", "delete", "author01", "--as", "admin"], 1, "still referenced by document"),
    (["user", "update", "author01", "--set", "active", "--as", "admin"], 2, "FIELD=VALUE"),
    (["user", "update", "author01", "--set", "color=red", "--as", "admin"], 2, "no field"),
    (["workflow", "move", "00000000-0000-0000-0000-000000000000", "approved"], 2, "no workflow"),
    (["--bogus"], 2, "No such option"),
    (["document", "add"], 2, "Missing argument"),
])
def test_refused_commands_change_nothing(demo_db: str, cli, args, code, message) -> None:
    before = status(cli, demo_db)
    result = cli(*args, db=demo_db)
    assert result.code == code, result.err
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    after = status(cli, demo_db)
    if message in ("may not", "own"):  # the refusal itself is audited, nothing else
        assert after["head_seq"] == before["head_seq"] + 1
        assert after["state_digest"] == before["state_digest"]
    else:
        assert after == before


def test_invalid_transition_is_refused(demo_db: str, cli) -> None:
    entities = [json.loads(line) for line in cli("export", db=demo_db).lines]
    names = {e["uuid"]: e["fields"].get("name") for e in entities}
    draft = next(e for e in entities if e["type"] == "workflow"
                 and names[e["fields"]["current_state"]] == "draft")
    result = cli("workflow", "move", draft["uuid"], "published", "--as", "reviewer01", db=demo_db)
    assert result.code == 1
    assert "cannot move from draft to published; allowed: in_review" in result.err


def test_inactive_actor_is_refused(demo_db: str, cli) -> None:
    assert cli("user", "update", "author01", "--set", "active=false", "--as", "admin",
               db=demo_db).code == 0
    result = cli("document", "add", "T", "--author", "author01", "--as", "author01", db=demo_db)
    assert result.code == 1 and "inactive" in result.err


def test_a_failing_batch_leaves_nothing(demo_db: str) -> None:
    vault = Vault(demo_db)
    before = vault.status()
    with pytest.raises(RuntimeError), vault.write("admin") as commands:
        commands.add_user("temporary", "viewer")
        commands.add_document("Half done", "temporary")
        raise RuntimeError("crash in the middle of a command")
    assert vault.status() == before


def test_a_uuid_the_batch_has_seen_is_still_checked(demo_db: str) -> None:
    """`find` answers from the transaction's identity map for a UUID it holds: still only
    for the type the row is of, and a reference to the wrong type is still refused."""
    vault = Vault(demo_db)
    try:
        before = vault.status()
        with pytest.raises(UsageError, match="no document"), vault.write("admin") as commands:
            user = commands.add_user("seen_once", "author")
            assert commands.find(user, "user")["uuid"] == user  # now in the identity map
            commands.find(user, "document")
        with pytest.raises(ValidationError, match="does not exist"), \
                vault.write("admin") as commands:
            user = commands.add_user("seen_twice", "author")
            document = commands.add_document("Seen", user)
            commands.create("workflow", {"document": user, "current_state": document})
        assert vault.status() == before
    finally:
        vault.close()
