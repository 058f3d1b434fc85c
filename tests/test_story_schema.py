"""The story's commands and the audit follow the vault's own schema, not a copy in code.

A default vault (dms version 1) moves to a version that renames story fields (a document's
`title`, a workflow state's `transitions`) and adds a defaulted one; `document add`,
`workflow move`, `user add`... keep working, the generic commands and `list` show the new
names, a package of it replays to the same export, and the audit shows old events under the
new names with the values they recorded.
"""

from __future__ import annotations

import json
import uuid
from importlib import resources
from pathlib import Path

import pytest
from conftest import ok, run_cli

DMS = resources.files("eventvault.schemadoc").joinpath("dms.toml").read_text(encoding="utf-8")

# Version 2 of the story's schema: two renames and a new field with a default.
DMS_RENAMED = DMS.replace("version = 1", "version = 2", 1).replace(
    '  { name = "title", kind = "str" },\n',
    '  { name = "heading", kind = "str", renamed_from = "title" },\n'
    '  { name = "language", kind = "str", default = "en" },\n', 1,
).replace(
    '{ name = "transitions", kind = "str", required = false, default = "" }',
    '{ name = "next_states", kind = "str", required = false, default = "", '
    'renamed_from = "transitions" }', 1)


def renamed_vault(db: str, tmp_path: Path) -> tuple[str, str]:
    """A vault with a document and a workflow written under version 1, then moved to the
    renaming version 2; returns (the old document's UUID, its workflow's UUID)."""
    ok("init", db=db)
    ok("user", "add", "alice", "--role", "author", "--as", "admin", db=db)
    old = ok("document", "add", "Old manual", "--author", "alice", "--as", "alice",
             db=db).out.strip()
    ok("document", "update", old, "--set", "title=Old manual v2", "--as", "alice", db=db)
    flow = ok("workflow", "start", old, "--as", "admin", db=db).out.strip()
    schema_file = tmp_path / "dms-v2.toml"
    assert "renamed_from" in DMS_RENAMED and "next_states" in DMS_RENAMED
    schema_file.write_text(DMS_RENAMED, encoding="utf-8")
    ok("schema", "apply", str(schema_file), "--as", "admin", db=db)
    return old, flow


def shown(db: str, ref: str) -> dict[str, object]:
    return json.loads(ok("entity", "show", ref, "--json", db=db).out)["fields"]


def test_story_commands_work_after_a_rename_and_a_new_field(db_url: str,
                                                             tmp_path: Path) -> None:
    old, flow = renamed_vault(db_url, tmp_path)
    # The story's commands, in the story's names, write the vault's current fields.
    new = ok("document", "add", "New guide", "--author", "alice", "--as", "alice",
             db=db_url).out.strip()
    fields = shown(db_url, new)
    assert fields["heading"] == "New guide" and fields["language"] == "en"
    assert "title" not in fields
    ok("document", "update", new, "--set", "title=By the story's name", "--as", "alice",
       db=db_url)
    assert shown(db_url, new)["heading"] == "By the story's name"
    ok("document", "update", new, "--set", "heading=By the new name", "--set", "language=fr",
       "--as", "alice", db=db_url)
    assert shown(db_url, new)["language"] == "fr"
    # workflow move reads the renamed `transitions` (now `next_states`) of the states.
    ok("workflow", "move", flow, "in_review", "--as", "admin", db=db_url)
    refused = run_cli("workflow", "move", flow, "published", "--as", "admin", db=db_url)
    assert refused.code == 1 and "allowed: approved, changes_requested" in refused.err
    ok("workflow", "start", new, "--as", "admin", db=db_url)
    ok("user", "add", "bob", "--role", "reviewer", "--as", "admin", db=db_url)
    ok("user", "update", "bob", "--set", "role=author", "--as", "admin", db=db_url)
    # The story's rules still hold on the renamed type: bob is not the document's author.
    denied = run_cli("document", "update", new, "--set", "title=x", "--as", "bob", db=db_url)
    assert denied.code == 1 and "not their own" in denied.err
    # Entities from before the change: the new name with the old value, the added default.
    assert shown(db_url, old) == {**shown(db_url, old), "heading": "Old manual v2",
                                  "language": "en"}
    assert shown(db_url, "workflow_state:draft")["next_states"] == "in_review"
    listed = json.loads(ok("list", "document", "--json", db=db_url).out)["entities"]
    assert {e["fields"]["heading"] for e in listed} == {"Old manual v2", "By the new name"}
    assert all("title" not in e["fields"] for e in listed)

    # snapshot -> replay -> the same export.
    package = tmp_path / "renamed.evp"
    ok("snapshot", "-o", str(package), db=db_url)
    copy = f"sqlite:///{tmp_path / 'copy.db'}"
    ok("replay", str(package), db=copy)
    head = str(json.loads(ok("status", "--json", db=db_url).out)["head_seq"])
    # (the copy has one entity more after it: the restore_job of the replay)
    assert ok("export", "--seq", head, db=copy).out == ok("export", db=db_url).out
    ok("verify", db=copy)
    assert shown(copy, old)["heading"] == "Old manual v2"


def test_the_audit_shows_old_events_under_the_renamed_fields(db_url: str,
                                                            tmp_path: Path) -> None:
    old, _ = renamed_vault(db_url, tmp_path)
    ok("document", "update", old, "--set", "title=After the change", "--as", "alice",
       db=db_url)
    history = [json.loads(line) for line in
               ok("audit", "history", old, "--json", db=db_url).lines]
    created, renamed, after = history[0], history[1], history[2]
    assert created["changes"]["heading"] == {"old": None, "new": "Old manual"}
    assert renamed["changes"] == {"heading": {"old": "Old manual", "new": "Old manual v2"}}
    assert after["changes"] == {"heading": {"old": "Old manual v2", "new": "After the change"}}
    assert not any("title" in event["changes"] for event in history)
    # The document's name, in the audit's answers, comes from the renamed field too.
    assert {event["entity_name"] for event in history[:2]} == {"Old manual", "Old manual v2"}
    # As of the moment before the change: the fields in today's names, the values of then.
    at = created["recorded_at"]
    state = json.loads(ok("audit", "as-of", old, "--at", at, "--json", db=db_url).out)["fields"]
    assert state["heading"] == "Old manual" and "title" not in state
    actor = [json.loads(line) for line in
             ok("audit", "actor", "alice", "--json", db=db_url).lines]
    assert [e["changes"].get("heading", {}).get("new") for e in actor
            if e["entity_type"] == "document"] == ["Old manual", "Old manual v2",
                                                   "After the change"]
    # A document found by a name it carried only under the old field name.
    found = json.loads(ok("audit", "history", "document:Old manual", "--json",
                          db=db_url).lines[0])
    assert found["entity_id"] == old


def test_no_public_attribute_hands_out_the_raw_appender(tmp_path: Path) -> None:
    # Every write must pass the policy (entities.py `_record`); an appender reachable from
    # the public API would let a caller append events no role check has seen.
    from eventvault import Vault
    from eventvault.identity import IdentityMap
    from eventvault.projection import RowWriter
    from eventvault.store import Appender

    db = f"sqlite:///{tmp_path / 'vault.db'}"
    ok("init", db=db)
    raw = (Appender, RowWriter, IdentityMap)
    with Vault(db) as vault:
        with vault.write("admin") as commands:
            assert not [name for name in dir(commands) if not name.startswith("_")
                        and isinstance(getattr(commands, name), raw)]
        with vault.entities("admin") as entities:
            assert not [name for name in dir(entities) if not name.startswith("_")
                        and isinstance(getattr(entities, name), raw)]


def test_a_bulk_writer_appends_only_through_the_role_check(tmp_path: Path) -> None:
    # `append_event` is what a bulk writer (app capture) may use instead of the commands:
    # the event passes the same permission check, so a viewer appends nothing.
    from eventvault import PermissionDeniedError, Vault

    db = f"sqlite:///{tmp_path / 'vault.db'}"
    ok("init", db=db)
    ok("user", "add", "viv", "--as", "admin", db=db)  # role viewer
    before = ok("status", "--json", db=db).out
    with Vault(db) as vault, \
            pytest.raises(PermissionDeniedError, match="viv \\(role viewer\\) may not"), \
            vault.entities("viv") as entities:
        entities.append_event(entities.spec("placeholder"), str(uuid.uuid4()), 1, "created",
                              {"key": "k", "value": "", "description": ""})
    after = json.loads(ok("status", "--json", db=db).out)
    assert after["head_seq"] == json.loads(before)["head_seq"] + 1  # the refusal, recorded
