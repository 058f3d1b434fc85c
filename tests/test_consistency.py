"""The command line's conventions: one point in time, usage errors (2) against failed checks
(1), exit codes in --help, the PostgreSQL driver, restoring into a fresh vault, reinit's
question on a terminal, shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from terminal import EVENTVAULT, on_terminal


@pytest.mark.parametrize("words", [
    ("export", "--at", "2026-01-01", "--seq", "3"),
    ("snapshot", "-o", "x.evpkg", "--at", "2026-01-01", "--seq", "3"),
    ("replay", "x.evpkg", "--at", "2026-01-01", "--seq", "3"),
])
def test_at_and_seq_together_is_a_usage_error(demo_db: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              words: tuple[str, ...]) -> None:
    monkeypatch.chdir(tmp_path)
    if words[0] == "replay":
        assert run_cli("snapshot", "-o", "x.evpkg", db=demo_db).code == 0
    result = run_cli(*words, db=demo_db)
    assert result.code == 2 and "--at or --seq, not both" in result.err
    assert result.out == ""


def test_snapshot_seq_0_is_refused(demo_db: str, tmp_path: Path) -> None:
    package = tmp_path / "zero.evpkg"
    result = run_cli("snapshot", "-o", str(package), "--seq", "0", db=demo_db)
    assert result.code == 2 and "at least event 1" in result.err
    assert not package.exists()


def test_a_bad_field_value_is_a_usage_error_a_refusal_a_failed_check(demo_db: str) -> None:
    document = json.loads(run_cli("list", "document", "--limit", "1", "--json",
                                  db=demo_db).out)["entities"][0]["uuid"]
    bad_status = run_cli("document", "update", document, "--set", "status=lost", "--as",
                         "admin", db=demo_db)
    assert bad_status.code == 2 and "status must be one of" in bad_status.err
    bad_role = run_cli("user", "update", "author01", "--set", "role=boss", "--as", "admin",
                       db=demo_db)
    assert bad_role.code == 2 and "role must be one of" in bad_role.err
    unknown_field = run_cli("user", "update", "author01", "--set", "shoe=9", "--as", "admin",
                            db=demo_db)
    assert unknown_field.code == 2
    refused = run_cli("document", "update", document, "--set", "status=archived", "--as",
                      "viewer01", db=demo_db)
    assert refused.code == 1  # the value is fine; the actor may not: a refused check


def test_help_lists_the_exit_codes() -> None:
    result = run_cli("--help")
    assert result.code == 0
    text = " ".join(result.out.split())
    assert "Exit codes: 0 success; 1 a check failed" in text and "2 a usage error" in text


def test_a_missing_postgresql_driver_names_the_extra(tmp_path: Path) -> None:
    probe = ("import sys; sys.modules['psycopg'] = None\n"
             "from eventvault.cli import main\n"
             "sys.exit(main(['--db', 'postgresql://u:pw@127.0.0.1/x', 'status']))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "pip install 'eventvault[postgres]'" in done.stderr and "pw" not in done.stderr


def test_a_freshly_reinitialised_vault_takes_a_replay_without_replace(
        demo_db: str, tmp_path: Path) -> None:
    package = str(tmp_path / "backup.evpkg")
    assert run_cli("snapshot", "-o", package, db=demo_db).code == 0
    before = json.loads(run_cli("status", "--json", db=demo_db).out)
    assert run_cli("reinit", "--yes", "--as", "admin", db=demo_db).code == 0
    restored = run_cli("replay", package, db=demo_db)
    assert restored.code == 0, restored.err
    assert "safety snapshot" not in restored.out
    assert not list(tmp_path.glob("eventvault-safety-*"))
    after = json.loads(run_cli("status", "--json", db=demo_db).out)
    assert after["counts"]["document"] == before["counts"]["document"] == 5
    # Holding user data again, the vault is protected again.
    again = run_cli("replay", package, db=demo_db)
    assert again.code == 1 and "use --replace" in again.err


def test_a_vault_with_changed_system_entities_is_not_fresh(db_url: str, tmp_path: Path,
                                                           make_db) -> None:
    source = make_db("sqlite")
    assert run_cli("init", db=source).code == 0 and run_cli("demo", db=source).code == 0
    package = str(tmp_path / "backup.evpkg")
    assert run_cli("snapshot", "-o", package, db=source).code == 0
    assert run_cli("init", db=db_url).code == 0
    assert run_cli("user", "update", "admin", "--set", "email=boss@example.com", "--as",
                   "admin", db=db_url).code == 0
    refused = run_cli("replay", package, db=db_url)
    assert refused.code == 1 and "not empty" in refused.err


def test_reinit_asks_on_a_terminal_naming_what_it_deletes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    assert run_cli("init", db=url).code == 0 and run_cli("demo", db=url).code == 0
    declined = on_terminal("--db", url, "reinit", "--as", "admin", stdin=True, typed="n\n")
    assert declined.code == 2
    assert "reinit deletes 88 events and every entity (10 users," in declined.terminal
    assert "nothing was changed" in declined.terminal
    assert json.loads(run_cli("status", "--json", db=url).out)["head_seq"] == 88
    accepted = on_terminal("--db", url, "reinit", "--as", "admin", stdin=True, typed="y\n")
    assert accepted.code == 0 and "vault reinitialised" in accepted.out
    assert json.loads(run_cli("status", "--json", db=url).out)["counts"]["document"] == 0


def test_reinit_without_a_terminal_refuses_without_asking(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    assert run_cli("init", db=url).code == 0
    done = subprocess.run([str(EVENTVAULT), "--db", url, "reinit", "--as", "admin"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2 and "add --yes to confirm" in done.stderr


def test_shell_completion_scripts_are_produced() -> None:
    for shell in ("bash", "zsh", "fish"):
        done = subprocess.run([str(EVENTVAULT)], capture_output=True, text=True, check=False,
                              env={**os.environ, "_EVENTVAULT_COMPLETE": f"{shell}_source"})
        assert done.returncode == 0, done.stderr
        assert "_EVENTVAULT_COMPLETE" in done.stdout and "eventvault" in done.stdout
    words = subprocess.run([str(EVENTVAULT)], capture_output=True, text=True, check=False,
                           env={**os.environ, "_EVENTVAULT_COMPLETE": "bash_complete",
                                "COMP_WORDS": "eventvault sna", "COMP_CWORD": "1"})
    assert "snapshot" in words.stdout
