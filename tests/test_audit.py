"""The audit trail through the CLI, on SQLite and PostgreSQL.

One story vault is built per engine and module (the demo, then a few writes with reasons, a
user and a document deleted, a refused attempt); every test only reads it, which keeps the
file fast while each query still runs against both engines.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Result, postgres_database, run_cli


@dataclass(frozen=True)
class Story:
    db: str
    document: str  # the demo's first document: created, then retitled, by author01
    policy: str  # a document written with --reason
    carol: str  # a user who wrote a document, deleted it, and was deleted herself
    draft: str  # carol's document


def cli_ok(story: Story, *args: str) -> Result:
    result = run_cli(*args, db=story.db)
    assert result.code == 0, result.err
    return result


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.lines]


def build_story(db: str) -> Story:
    def write(*args: str) -> str:
        result = run_cli(*args, db=db)
        assert result.code == 0, result.err
        return result.out.strip()

    write("init")
    write("demo")
    first = json.loads(write("audit", "log", "--type", "document", "--limit", "1", "--json"))
    policy = write("document", "add", "Audit policy", "--author", "author02", "--as", "author02",
                   "--reason", "ISO 27001 finding 7")
    write("document", "update", policy, "--set", "title=Audit policy v2", "--as", "author02",
          "--reason", "clarified the scope")
    carol = write("user", "add", "carol", "--role", "author", "--as", "admin",
                  "--reason", "contractor")
    draft = write("document", "add", "Carol's draft", "--author", "carol", "--as", "carol")
    write("document", "update", draft, "--set", "title=Carol's final draft", "--as", "carol")
    write("document", "delete", draft, "--as", "carol", "--reason", "superseded")
    write("user", "delete", "carol", "--as", "admin", "--reason", "contract ended")
    # A refused attempt is recorded with the command line; the console script's argv is what
    # the CLI records, so give it the one a person would have typed.
    argv = ["eventvault", "document", "add", "Sneaky", "--author", "author01", "--as", "viewer01"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", argv)
        assert run_cli(*argv[1:], db=db).code != 0
    return Story(db, first["entity_id"], policy, carol, draft)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Story]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            db = f"sqlite:///{Path(tmp_path_factory.mktemp('audit')) / 'vault.db'}"
        else:
            db = stack.enter_context(postgres_database())
        yield build_story(db)


# --- history -----------------------------------------------------------------------------

def test_history_of_a_demo_document_shows_old_and_new_title_and_the_author(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "history", story.document, "--json"))
    assert [e["event_type"] for e in events] == ["created", "updated"]
    created, updated = events
    assert created["seq"] < updated["seq"]
    assert created["actor"] == updated["actor"] == "author01"
    assert created["recorded_at"].endswith("Z") and "T" in created["recorded_at"]
    assert created["changes"]["title"]["old"] is None
    assert created["changes"]["author"]["new"]["name"] == "author01"
    assert len(created["changes"]["author"]["new"]["uuid"]) == 36
    old_title = created["changes"]["title"]["new"]
    assert updated["changes"] == {"title": {"old": old_title, "new": f"{old_title} (rev. 2)"}}
    assert updated["reason"] == "new document"

    table = cli_ok(story, "audit", "history", story.document).out
    assert table.splitlines()[1].split() == [
        "SEQ", "TIME", "ACTOR", "AUTHENTICATED", "EVENT", "REASON", "CHANGES"]
    assert f'title: "{old_title}" -> "{old_title} (rev. 2)"' in table
    assert "author01" in table


def test_reasons_given_on_write_commands_show_up(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "history", "document:Audit policy v2", "--json"))
    assert [(e["event_type"], e["reason"]) for e in events] == [
        ("created", "ISO 27001 finding 7"), ("updated", "clarified the scope")]
    assert events[1]["changes"]["title"] == {"old": "Audit policy", "new": "Audit policy v2"}
    assert "clarified the scope" in cli_ok(story, "audit", "history", story.policy).out


def test_a_deleted_entity_keeps_its_history_by_uuid_and_by_former_name(story: Story) -> None:
    by_name = json_lines(cli_ok(story, "audit", "history", "document:Carol's draft", "--json"))
    by_uuid = json_lines(cli_ok(story, "audit", "history", story.draft, "--json"))
    assert by_name == by_uuid
    assert [e["event_type"] for e in by_uuid] == ["created", "updated", "deleted"]
    deleted = by_uuid[-1]
    assert deleted["reason"] == "superseded" and deleted["actor"] == "carol"
    assert deleted["changes"]["title"] == {"old": "Carol's final draft", "new": None}
    assert all(change["new"] is None for change in deleted["changes"].values())
    assert deleted["changes"]["author"]["old"]["name"] == "carol"
    assert "(deleted)" in cli_ok(story, "audit", "history", "carol").lines[0]


@pytest.mark.parametrize(("ref", "name"), [
    ("user:admin", "admin"), ("admin", "admin"), ("workflow_state:draft", "draft"),
    ("placeholder:company_name", "company_name"), ("backup_config:daily_full", "daily_full"),
])
def test_system_entities_by_type_and_natural_key(story: Story, ref: str, name: str) -> None:
    events = json_lines(cli_ok(story, "audit", "history", ref, "--json"))
    assert events[0]["event_type"] == "created" and events[0]["actor"] == "system"
    assert events[0]["entity_name"] == name
    by_uuid = json_lines(cli_ok(story, "audit", "history", events[0]["entity_id"], "--json"))
    assert by_uuid == events


# --- actor -------------------------------------------------------------------------------

def test_actor_shows_a_reviewers_workflow_transitions(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "actor", "reviewer01", "--json"))
    assert all(e["actor"] == "reviewer01" for e in events)
    moves = [(e["changes"]["current_state"]["old"]["name"],
              e["changes"]["current_state"]["new"]["name"])
             for e in events if e["event_type"] == "transitioned"]
    assert moves == [("draft", "in_review"), ("in_review", "approved"), ("approved", "published")]
    workflow = next(e for e in events if e["event_type"] == "transitioned")
    assert workflow["entity_type"] == "workflow" and workflow["entity_name"]  # its document
    table = cli_ok(story, "audit", "actor", "reviewer01").out
    assert "current_state: draft [" in table and "-> in_review [" in table


def test_actor_deleted_since_is_still_found(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "actor", "carol", "--json"))
    assert [(e["entity_id"], e["event_type"]) for e in events] == [
        (story.draft, "created"), (story.draft, "updated"), (story.draft, "deleted")]
    assert [e["entity_name"] for e in events] == [
        "Carol's draft", "Carol's final draft", "Carol's final draft"]


def test_an_access_denied_attempt_appears_under_its_actor(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "actor", "viewer01", "--json"))
    denied = [e for e in events if e["event_type"] == "access_denied"]
    assert len(denied) == 1
    assert "document add Sneaky" in denied[0]["command"]
    assert denied[0]["entity_id"] == denied[0]["actor_id"] and denied[0]["changes"] == {}
    table = cli_ok(story, "audit", "actor", "viewer01").out
    assert "attempted: eventvault document add Sneaky" in table


def test_actor_time_range_and_pages(story: Story) -> None:
    everything = json_lines(cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "0"))
    assert len(everything) > 10
    middle = everything[len(everything) // 2]
    since = json_lines(cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "0",
                              "--since", middle["recorded_at"]))
    assert since == [e for e in everything if e["seq"] >= middle["seq"]]
    until = json_lines(cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "0",
                              "--until", middle["recorded_at"]))
    assert until == [e for e in everything if e["seq"] <= middle["seq"]]
    zoneless = json_lines(cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "0",
                                 "--until", middle["recorded_at"].removesuffix("Z")))
    assert zoneless == until  # a time without a zone is UTC

    first = cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "3")
    assert json_lines(first) == everything[:3]
    assert f"--after {everything[2]['seq']}" in first.err and len(first.err.splitlines()) == 1
    second = cli_ok(story, "audit", "actor", "admin", "--json", "--limit", "3",
                    "--after", str(everything[2]["seq"]))
    assert json_lines(second) == everything[3:6]


# --- as-of -------------------------------------------------------------------------------

def test_as_of_before_and_after_an_update(story: Story) -> None:
    created, updated = json_lines(cli_ok(story, "audit", "history", story.document, "--json"))
    title = created["changes"]["title"]["new"]
    before = json.loads(cli_ok(story, "audit", "as-of", story.document, "--at",
                               created["recorded_at"], "--json").out)
    after = json.loads(cli_ok(story, "audit", "as-of", story.document, "--at",
                              updated["recorded_at"], "--json").out)
    assert before["fields"]["title"] == title and before["version"] == 1
    assert after["fields"]["title"] == f"{title} (rev. 2)" and after["version"] == 2
    assert after["fields"]["author"]["name"] == "author01"
    table = cli_ok(story, "audit", "as-of", story.document, "--at", created["recorded_at"]).out
    assert f'title     "{title}"' in table


def test_as_of_an_entity_deleted_later(story: Story) -> None:
    created, updated, deleted = json_lines(
        cli_ok(story, "audit", "history", story.draft, "--json"))
    first = json.loads(cli_ok(story, "audit", "as-of", story.draft, "--at",
                              created["recorded_at"], "--json").out)
    assert first["fields"]["title"] == "Carol's draft"
    state = json.loads(cli_ok(story, "audit", "as-of", story.draft, "--at",
                              updated["recorded_at"], "--json").out)
    assert state["fields"]["title"] == "Carol's final draft"
    assert state["fields"]["author"] == {"uuid": story.carol, "name": "carol"}

    gone = run_cli("audit", "as-of", story.draft, "--at", deleted["recorded_at"], db=story.db)
    assert gone.code == 1 and gone.out == ""
    assert len(gone.err.splitlines()) == 1 and "deleted it at" in gone.err
    assert "earlier time" in gone.err

    early = run_cli("audit", "as-of", "carol", "--at", "2000-01-01T00:00:00", db=story.db)
    assert early.code == 1 and "did not exist yet" in early.err and early.out == ""


# --- log and formats ---------------------------------------------------------------------

def test_log_by_type_has_only_that_type(story: Story) -> None:
    events = json_lines(cli_ok(story, "audit", "log", "--type", "workflow", "--json"))
    assert {e["entity_type"] for e in events} == {"workflow"}
    assert [e["event_type"] for e in events].count("transitioned") == 6  # the demo's moves
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    by_actor = json_lines(cli_ok(story, "audit", "log", "--type", "workflow",
                                 "--actor", "reviewer03", "--json"))
    assert by_actor == [e for e in events if e["actor"] == "reviewer03"] != []


def test_log_limit_zero_is_the_whole_log(story: Story) -> None:
    status = json.loads(cli_ok(story, "status", "--json").out)
    events = json_lines(cli_ok(story, "audit", "log", "--limit", "0", "--json"))
    assert [e["seq"] for e in events] == list(range(1, status["head_seq"] + 1))


def test_csv_parses_with_compact_changes(story: Story) -> None:
    rows = list(csv.DictReader(io.StringIO(
        cli_ok(story, "audit", "history", story.document, "--csv").out)))
    assert [row["event_type"] for row in rows] == ["created", "updated"]
    assert rows[0]["actor"] == "author01" and rows[1]["reason"] == "new document"
    assert json.loads(rows[1]["changes"])["title"]["new"].endswith("(rev. 2)")
    state = list(csv.DictReader(io.StringIO(
        cli_ok(story, "audit", "as-of", story.document, "--at", "2100-01-01", "--csv").out)))
    author = next(row for row in state if row["field"] == "author")
    assert author["value"] == "author01" and len(author["uuid"]) == 36
    log_rows = list(csv.DictReader(io.StringIO(
        cli_ok(story, "audit", "log", "--type", "workflow", "--csv").out)))
    assert {row["entity_type"] for row in log_rows} == {"workflow"}


# --- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("history", "nobody"),
    ("history", "document:No such title"),
    ("history", "00000000-0000-0000-0000-000000000000"),
    ("history", "gadget:thing"),
    ("history", "workflow_state:draft-ish"),
    ("actor", "ghost"),
    ("as-of", "nobody", "--at", "2026-01-01"),
    ("log", "--type", "gadget"),
    ("log", "--actor", "ghost"),
    ("actor", "admin", "--since", "yesterday"),
    ("log", "--until", "29/11/2026"),
    ("as-of", "admin", "--at", "noon"),
    ("history", "admin", "--json", "--csv"),
])
def test_unknown_or_malformed_input_is_one_line_on_stderr(story: Story, args: tuple[str, ...]
                                                          ) -> None:
    result = run_cli("audit", *args, db=story.db)
    assert result.code != 0
    # With --json the error is also one object on stdout, for scripts (the CLI's convention).
    expected = (json.dumps({"error": result.err.strip()[len("eventvault: "):],
                            "exit_code": result.code}, separators=(",", ":")) + "\n"
                if "--json" in args else "")
    assert result.out == expected
    assert len(result.err.splitlines()) == 1 and result.err.startswith("eventvault: ")


def test_a_malformed_time_is_a_usage_error(story: Story) -> None:
    result = run_cli("audit", "log", "--since", "yesterday", db=story.db)
    assert result.code == 2 and "malformed time" in result.err


@pytest.mark.parametrize("command", [("log",), ("actor", "admin")])
def test_the_more_follow_line_respects_quiet(vault: str, command: tuple[str, ...]) -> None:
    told = run_cli("audit", *command, "--limit", "2", "--json", db=vault)
    assert told.code == 0 and "more follow; continue with --after" in told.err
    quiet = run_cli("audit", *command, "--limit", "2", "--json", "--quiet", db=vault)
    assert quiet.code == 0 and quiet.err == "" and quiet.out == told.out
