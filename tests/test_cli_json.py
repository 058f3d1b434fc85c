"""--json: every reporting command prints exactly one JSON object on stdout; an error with
--json is one object too, and still one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Result, run_cli
from sqlalchemy.engine import make_url

from eventvault import schema

HEAD = {"vault_id", "url", "schema_revision", "head_seq", "head_hash", "state_digest", "counts"}


def one_object(result: Result) -> dict:
    assert len(result.lines) == 1, result.out
    return json.loads(result.out)


def test_lifecycle_commands_say_what_exists_now(db_url: str) -> None:
    init = one_object(run_cli("init", "--json", db=db_url))
    assert set(init) == HEAD | {"created", "writer_role"} and init["created"] == 54
    assert init["head_seq"] == 54 and init["counts"]["user"] == 2
    demo = one_object(run_cli("demo", "--json", db=db_url))
    assert set(demo) == HEAD and demo["counts"]["document"] == 5
    assert demo["head_hash"] == one_object(run_cli("status", "--json", db=db_url))["head_hash"]
    again = one_object(run_cli("reinit", "--yes", "--as", "admin", "--json", db=db_url))
    assert set(again) == HEAD | {"created"} and again["counts"]["document"] == 0


def test_write_commands_answer_uuid_seq_and_head(demo_db: str) -> None:
    added = one_object(run_cli("user", "add", "dora", "--role", "author", "--as", "admin",
                               "--json", db=demo_db))
    assert set(added) == {"uuid", "seq", "head_hash"}
    status = one_object(run_cli("status", "--json", db=demo_db))
    assert (added["seq"], added["head_hash"]) == (status["head_seq"], status["head_hash"])
    document = one_object(run_cli("document", "add", "Plan", "--author", "dora", "--as",
                                  "admin", "--json", db=demo_db))
    assert document["seq"] == added["seq"] + 1
    plain = run_cli("document", "update", document["uuid"], "--set", "title=Plan 2", "--as",
                    "admin", db=demo_db)
    assert plain.code == 0 and plain.out == f"{document['uuid']}\n"  # people: the UUID alone


def test_snapshot_replay_and_verify_shapes(demo_db: str, tmp_path: Path, make_db) -> None:
    package = tmp_path / "full.evpkg"
    made = one_object(run_cli("snapshot", "-o", str(package), "--json", db=demo_db))
    assert set(made) == {"path", "events", "first_seq", "last_seq", "bytes", "frames",
                         "head_hash", "state_digest", "since", "warnings"}
    assert (made["path"], made["events"], made["first_seq"], made["last_seq"]) == (
        str(package), 88, 1, 88)
    assert made["bytes"] == package.stat().st_size and made["since"] is None
    assert made["warnings"] == []
    checked = one_object(run_cli("verify", str(package), "--json"))
    assert checked["ok"] is True and checked["first_problem"] is None
    assert checked["head_hash"] == made["head_hash"] and checked["events"] == 88
    restored = one_object(run_cli("replay", str(package), "--json", db=make_db("sqlite")))
    assert {"events", "head_seq", "head_hash", "state_digest", "counts", "restore_job",
            "safety_snapshot", "seconds"} <= set(restored)
    assert restored["events"] == 88 and restored["safety_snapshot"] is None
    assert restored["state_digest"] == made["state_digest"] and restored["restore_job"]


def test_a_failed_verify_is_one_object_and_exit_1(demo_db: str, tmp_path: Path) -> None:
    package = tmp_path / "full.evpkg"
    assert run_cli("snapshot", "-o", str(package), db=demo_db).code == 0
    result = run_cli("verify", str(package), "--expect-head", "ab" * 32, "--json")
    assert result.code == 1
    found = one_object(result)  # the report is the object: no second, error object
    assert found["ok"] is False and "not the expected" in found["first_problem"]
    assert result.err.startswith("eventvault: verification failed")


@pytest.mark.parametrize("words, code", [
    (("status", "--json"), 1),                               # no vault there
    (("snapshot", "-o", "x.evpkg", "--seq", "0", "--json"), 2),
    (("list", "gadget", "--json"), 2),
    (("user", "add", "x y", "--json"), 1),
    (("audit", "log", "--type", "gadget", "--json"), 2),
])
def test_an_error_with_json_is_one_object_on_stdout_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, words: tuple[str, ...], code: int
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    if words[0] != "status":
        assert run_cli("init", db=url).code == 0
    result = run_cli(*words, db=url)
    assert result.code == code
    found = one_object(result)
    assert found == {"error": result.err.strip().removeprefix("eventvault: "),
                     "exit_code": code}
    assert len(result.err.splitlines()) == 1


def test_status_json_names_the_vault_without_its_password(make_db) -> None:
    url = make_db("postgresql")  # the test server trusts any password
    with_password = make_url(url).set(password="s3cret").render_as_string(hide_password=False)
    assert run_cli("init", db=with_password).code == 0
    found = one_object(run_cli("status", "--json", db=with_password))
    assert "s3cret" not in json.dumps(found) and "***" in found["url"]
    assert found["schema_revision"] == schema.head_revision() and len(found["vault_id"]) == 36
