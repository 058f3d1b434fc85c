"""Hostile input: values no engine can store are refused at the door, and stored values
cannot steer a person's terminal or break a tool's CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from eventvault.errors import ValidationError
from eventvault.vault import Vault


def status(cli, db: str) -> dict:
    return json.loads(cli("status", "--json", db=db).out)


def a_document(cli, db: str) -> str:
    return next(json.loads(line)["uuid"] for line in cli("export", db=db).lines
                if '"type":"document"' in line)


@pytest.mark.parametrize("bad", ["a\x00b", "bad \udcff utf-8"])
def test_unstorable_text_is_refused_by_the_cli_and_the_library(demo_db: str, cli, bad: str
                                                               ) -> None:
    before = status(cli, demo_db)
    for args in (["document", "add", bad, "--author", "author01", "--as", "author01"],
                 ["user", "add", "eve", "--email", bad, "--as", "admin"],
                 ["document", "update", a_document(cli, demo_db), "--set", f"title={bad}",
                  "--as", "admin"],
                 ["user", "add", "eve", "--as", "admin", "--reason", bad],
                 ["audit", "history", bad]):
        result = cli(*args, db=demo_db)
        assert result.code == 2, args
        assert result.err.count("\n") == 1 and result.err.startswith("eventvault: argument")
    with Vault(demo_db) as vault:
        with (
            pytest.raises(ValidationError, match="document title"),
            vault.write("author01") as commands,
        ):
            commands.add_document(bad, "author01")
        with pytest.raises(ValidationError, match="user email"), vault.write("admin") as commands:
            commands.create("user", {"username": "eve", "role": "viewer", "email": bad,
                                     "active": True})
        with (
            pytest.raises(ValidationError, match="reason"),
            vault.write("admin", reason=bad) as commands,
        ):
            commands.add_user("eve")
        with pytest.raises(ValidationError, match="reference"), vault.write("admin") as commands:
            commands.find(bad, "user")
    assert status(cli, demo_db) == before


def test_a_vault_written_through_the_library_replays_into_postgresql(cli, make_db,
                                                                     tmp_path: Path) -> None:
    """What SQLite would have stored (a NUL title) was refused, so the rest replays."""
    source = make_db("sqlite")
    assert cli("init", db=source).code == 0
    with Vault(source) as vault:
        with pytest.raises(ValidationError), vault.write("admin") as commands:
            commands.create("document", {"title": "nul\x00title",
                                         "author": commands.find("admin", "user")["uuid"]})
        with vault.write("admin") as commands:
            commands.add_document("fine", "admin")
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=source).code == 0
    assert cli("replay", str(package), db=make_db("postgresql")).code == 0


def test_text_longer_than_the_limit_is_refused(demo_db: str, cli,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    before = status(cli, demo_db)
    long_title = "é" * (32 * 1024 + 1)  # 64 KiB + 2 bytes of UTF-8
    result = cli("document", "add", long_title, "--author", "author01", "--as", "author01",
                 db=demo_db)
    assert result.code == 1 and "the limit is 65536" in result.err
    assert result.err.count("\n") == 1
    assert cli("document", "add", "é" * (32 * 1024), "--author", "author01", "--as",
               "author01", db=demo_db).code == 0
    monkeypatch.setenv("EVENTVAULT_MAX_TEXT", "10")
    result = cli("user", "add", "eve", "--email", "e" * 11, "--as", "admin", db=demo_db)
    assert result.code == 1 and "the limit is 10" in result.err
    monkeypatch.setenv("EVENTVAULT_MAX_TEXT", "lots")
    assert cli("user", "add", "eve", "--as", "admin", db=demo_db).code == 2
    monkeypatch.delenv("EVENTVAULT_MAX_TEXT")
    with (
        Vault(demo_db, max_text=4) as vault,
        pytest.raises(ValidationError, match="limit is 4"),
        vault.write("admin") as commands,
    ):
        commands.add_user("abcde")
    assert status(cli, demo_db)["head_seq"] == before["head_seq"] + 1


ESCAPES = "\x1b[2J\x1b]0;owned\x07\x9b31m\rover"


def test_stored_escape_sequences_reach_people_escaped(demo_db: str, cli) -> None:
    document = a_document(cli, demo_db)
    assert cli("document", "update", document, "--set", f"title=T{ESCAPES}", "--as", "admin",
               "--reason", f"why{ESCAPES}", db=demo_db).code == 0
    outputs = [
        cli("audit", "history", document, db=demo_db),
        cli("audit", "log", "--limit", "0", db=demo_db),
        cli("audit", "actor", "admin", "--limit", "0", db=demo_db),
        cli("audit", "as-of", document, "--at", "2999-01-01", db=demo_db),
        cli("document", "update", f"document:{ESCAPES}", "--set", "title=x", "--as", "admin",
            db=demo_db),  # an error message quoting the argument
        cli("status", db=demo_db),
    ]
    for result in outputs:
        shown = result.out + result.err
        assert not any(c in shown for c in "\x1b\x07\x9b\r"), shown
    header, *rows = outputs[0].out.splitlines()
    assert "\\u001b[2J" in header and "\\x9b31m" in header  # shown, escaped
    assert any("why\\x1b[2J" in row for row in rows)  # the reason cell
    # JSON keeps the exact value, with control characters escaped by JSON itself.
    for line in cli("audit", "history", document, "--json", db=demo_db).lines:
        assert "\x1b" not in line
    last = json.loads(cli("audit", "history", document, "--json", db=demo_db).lines[-1])
    assert last["changes"]["title"]["new"] == f"T{ESCAPES}" and last["reason"] == f"why{ESCAPES}"
    exported = [json.loads(line) for line in cli("export", db=demo_db).lines]
    assert any(e["fields"].get("title") == f"T{ESCAPES}" for e in exported)
    assert "\x1b" not in cli("export", db=demo_db).out


def test_csv_is_rfc4180_with_line_breaks_in_values(demo_db: str, cli) -> None:
    document = a_document(cli, demo_db)
    title = 'two\r\nlines, "quoted"'
    assert cli("document", "update", document, "--set", f"title={title}", "--as", "admin",
               "--reason", "a\nb", db=demo_db).code == 0
    for args in (["audit", "history", document, "--csv"],
                 ["audit", "log", "--csv", "--limit", "0"],
                 ["audit", "as-of", document, "--at", "2999-01-01", "--csv"]):
        out = cli(*args, db=demo_db).out
        rows = list(csv.reader(io.StringIO(out, newline="")))
        header = rows[0]
        assert all(len(row) == len(header) for row in rows), args
        assert out.count("\n") > len(rows)  # the line breaks are inside quoted cells
    history = list(csv.DictReader(io.StringIO(
        cli("audit", "history", document, "--csv", db=demo_db).out, newline="")))
    assert history[-1]["entity_name"] == title and history[-1]["reason"] == "a\nb"


# Right-to-left override, isolates, a zero-width joiner and a language tag (beyond U+FFFF):
# invisible, and able to make "txt.exe" read as "exe.txt" on a terminal.
DISGUISES = "inv\u202eexe.txt\u202c \u2066x\u2069 a\u200db \U000e0001"


def test_format_characters_reach_people_escaped(demo_db: str, cli) -> None:
    document = a_document(cli, demo_db)
    assert cli("document", "update", document, "--set", f"title={DISGUISES}", "--as", "admin",
               "--reason", f"why{DISGUISES}", db=demo_db).code == 0
    outputs = [
        cli("audit", "history", document, db=demo_db),
        cli("audit", "log", "--limit", "0", db=demo_db),
        cli("list", "document", "--limit", "0", db=demo_db),
        cli("document", "update", f"document:{DISGUISES}", "--set", "title=x", "--as", "admin",
            db=demo_db),  # an error message quoting the argument
    ]
    for result in outputs:
        shown = result.out + result.err
        assert not any(c in shown for c in "\u202e\u202c\u2066\u2069\u200d\U000e0001"), shown
    assert "inv\\u202eexe.txt\\u202c" in outputs[2].out
    assert "\\U000e0001" in outputs[3].err
    assert "why" in outputs[1].out and "\\u2066x\\u2069" in outputs[1].out
    # JSON keeps the exact value: escaping is for terminals only.
    listed = json.loads(cli("list", "document", "--limit", "0", "--json", db=demo_db).out)
    assert any(e["fields"]["title"] == DISGUISES for e in listed["entities"])
