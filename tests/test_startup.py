"""Start-up: `--help` and `--version` load neither SQLAlchemy nor alembic, read commands no
alembic (it is needed only to migrate), and `status` and the audit on a SQLite file no
SQLAlchemy either (reader.py). Checked in a fresh interpreter each time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from eventvault import schema

PROBE = """
import json, sys
from eventvault.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(m.split(".")[0] for m in sys.modules)}),
      file=sys.stderr)
"""


def loaded(*words: str, cwd: Path | None = None) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running `eventvault WORDS`."""
    done = subprocess.run([sys.executable, "-c", PROBE, *words], capture_output=True,
                          text=True, cwd=cwd, check=False)
    found = json.loads(done.stderr.strip().splitlines()[-1])
    assert found["code"] == 0, done.stderr
    return set(found["modules"])


@pytest.mark.parametrize("words", [("--version",), ("--help",), ("audit", "--help"),
                                   ("replay", "--help")])
def test_help_and_version_load_neither_sqlalchemy_nor_alembic(words: tuple[str, ...]) -> None:
    modules = loaded(*words)
    assert "eventvault" in modules
    assert not {"sqlalchemy", "alembic"} & modules


@pytest.mark.parametrize("words", [("export",), ("verify",), ("list", "user")])
def test_read_commands_do_not_load_alembic(tmp_path: Path, words: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    assert run_cli("init", db=url).code == 0
    modules = loaded("--db", url, *words)
    assert "sqlalchemy" in modules  # the probe did read the vault
    assert "alembic" not in modules


@pytest.mark.parametrize("words", [("status",), ("status", "--json"), ("audit", "log"),
                                   ("audit", "history", "admin"),
                                   ("audit", "actor", "system", "--limit", "0"),
                                   ("audit", "as-of", "admin", "--at", "2100-01-01")])
def test_status_and_the_audit_read_a_sqlite_file_without_sqlalchemy(
        tmp_path: Path, words: tuple[str, ...]) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    assert run_cli("init", db=url).code == 0
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, "--db", url, *words],
                          capture_output=True, text=True, check=False)
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert json.loads(done.stderr.strip().splitlines()[-1])["code"] == 0, done.stderr
    assert done.stdout.strip()  # it did answer
    assert "eventvault.reader" in imported
    assert not {name for name in imported if name.split(".")[0] in ("sqlalchemy", "alembic")}


def test_the_head_revision_read_from_the_scripts_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    assert schema.head_revision() == ScriptDirectory.from_config(schema._config()
                                                                 ).get_current_head()


def test_the_audit_commands_default_page_is_the_librarys() -> None:
    from eventvault import audit
    from eventvault.cli import audit as audit_cli

    assert audit_cli.DEFAULT_LIMIT == audit.DEFAULT_LIMIT
