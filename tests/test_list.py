"""`eventvault list TYPE`: find entities (and their UUIDs) without export | grep."""

from __future__ import annotations

import json

from conftest import run_cli


def test_list_shows_uuid_name_version_and_references_by_name(demo_db: str) -> None:
    result = run_cli("list", "workflow", db=demo_db)
    assert result.code == 0
    assert result.lines[0].split() == ["UUID", "VERSION", "DOCUMENT", "CURRENT_STATE",
                                       "ASSIGNEE"]
    assert len(result.lines) == 5 and any("published" in line for line in result.lines)
    found = json.loads(run_cli("list", "workflow", "--json", db=demo_db).out)
    exported = {json.loads(line)["uuid"] for line in run_cli("export", db=demo_db).lines}
    assert found["count"] == 4 and found["more"] is False
    for entity in found["entities"]:
        assert entity["uuid"] in exported and entity["version"] >= 1
        assert entity["fields"]["document"]["uuid"] in exported
        assert entity["fields"]["document"]["name"].endswith("(rev. 2)")


def test_list_is_sorted_by_name_and_filters(demo_db: str) -> None:
    users = json.loads(run_cli("list", "user", "--json", db=demo_db).out)["entities"]
    names = [user["name"] for user in users]
    assert names == sorted(names) and len(names) == 10
    authors = json.loads(run_cli("list", "user", "--where", "role=author", "--json",
                                 db=demo_db).out)["entities"]
    assert [a["name"] for a in authors] == ["author01", "author02", "author03", "author04"]
    by_author = json.loads(run_cli("list", "document", "--where", "author=author01",
                                   "--where", "status=draft", "--json", db=demo_db).out)
    assert by_author["count"] >= 1
    assert {d["fields"]["author"]["name"] for d in by_author["entities"]} == {"author01"}
    disabled = json.loads(run_cli("list", "backup_config", "--where", "enabled=false",
                                  "--json", db=demo_db).out)
    assert [c["name"] for c in disabled["entities"]] == ["disaster_recovery"]


def test_list_limit_says_when_more_exist(demo_db: str) -> None:
    cut = run_cli("list", "placeholder", "--limit", "3", db=demo_db)
    assert cut.code == 0 and len(cut.lines) == 4
    assert "more exist" in cut.err
    found = json.loads(run_cli("list", "placeholder", "--limit", "3", "--json", db=demo_db).out)
    assert found["more"] is True and found["count"] == 3
    everything = json.loads(run_cli("list", "placeholder", "--limit", "0", "--json",
                                    db=demo_db).out)
    assert everything["count"] == 32 and everything["more"] is False


def test_list_bad_input_is_a_usage_error(demo_db: str) -> None:
    for words in (("list", "gadget"), ("list", "user", "--where", "shoe=9"),
                  ("list", "user", "--where", "role=boss"), ("list", "user", "--where", "x"),
                  ("list", "document", "--where", "author=nobody"),
                  ("list", "backup_config", "--where", "retention_days=many")):
        result = run_cli(*words, db=demo_db)
        assert result.code == 2, words
        assert result.out == "" and len(result.err.splitlines()) == 1, words
