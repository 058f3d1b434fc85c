"""The issue-13 story through the CLI: `app attach`, `app capture`, `snapshot`, the reinit,
`replay` into a fresh vault, `app restore`, and a capture of the restored application."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Result
from dms_project import production, reinit, show

COUNTS = {"User": 10, "WorkflowState": 5, "Document": 5, "Workflow": 4, "Placeholder": 32,
          "BackupConfig": 14, "BackupJob": 3, "RestoreJob": 2}


@pytest.mark.parametrize(("engine", "target_engine"), [
    ("sqlite", "sqlite"), ("postgresql", "postgresql"), ("sqlite", "postgresql"),
    ("sqlite", "mariadb"), ("mariadb", "mariadb"), ("mariadb", "sqlite")])
def test_the_story_through_the_cli(cli: Callable[..., Result], make_db: Callable[[str], str],
                                   tmp_path: Path, engine: str, target_engine: str) -> None:
    app_url, vault = make_db(engine), make_db(engine)
    production(app_url)
    before = show(app_url)

    attached = cli("app", "attach", app_url, "--json", db=vault)
    assert attached.code == 0, attached.err
    decisions = {d["table"]: d["decision"] for d in json.loads(attached.out)["tables"]}
    assert decisions["django_migrations"] == "skipped"

    captured = cli("app", "capture", "--json", db=vault)
    assert captured.code == 0, captured.err
    assert json.loads(captured.out)["created"] > 70
    again = cli("app", "capture", db=vault)
    assert (again.code, again.out) == (0, "nothing changed: no events appended\n")

    package = tmp_path / "app.evpkg"
    assert cli("snapshot", "-o", str(package), db=vault).code == 0

    target, fresh_vault = make_db(target_engine), make_db(engine)
    reinit(target)  # new database, migrate, the application's own init
    replayed = cli("replay", str(package), db=fresh_vault)
    assert replayed.code == 0, replayed.err
    restored = cli("app", "restore", target, db=fresh_vault)
    assert restored.code == 0, restored.err

    after = show(target)  # Django's own ORM reads it back
    assert after["counts"] == COUNTS
    assert after == before  # authors and reviewers the same people, values exact
    # the identity now names the target's rows, and a decimal reads back the same from
    # either engine: nothing to record
    again = cli("app", "capture", db=fresh_vault)  # the URL restore recorded
    assert (again.code, again.out) == (0, "nothing changed: no events appended\n"), again.err


@pytest.mark.parametrize(("engine", "target_engine"), [
    ("sqlite", "sqlite"), ("postgresql", "postgresql"), ("postgresql", "sqlite"),
    ("mariadb", "mariadb")])
def test_after_a_disaster_the_package_alone_restores_and_captures(
        cli: Callable[..., Result], make_db: Callable[[str], str], tmp_path: Path,
        engine: str, target_engine: str) -> None:
    """The vault and the application are both lost; the operator has the package. A fresh
    vault replayed from it knows the attachment (URL, --exclude, mapping) and every row's
    identity: `app restore`, then `app capture` records nothing, the exclusion holds."""
    app_url, vault = make_db(engine), make_db(engine)
    production(app_url)
    before = show(app_url)
    attached = cli("app", "attach", app_url, "--exclude", "*group*", "--json", db=vault)
    assert attached.code == 0, attached.err
    decisions = {d["table"]: d["decision"] for d in json.loads(attached.out)["tables"]}
    assert decisions["auth_user_groups"] == decisions["auth_group"] == "excluded"
    assert cli("app", "capture", db=vault).code == 0
    package = tmp_path / "app.evpkg"
    assert cli("snapshot", "-o", str(package), db=vault).code == 0

    fresh_vault, target = make_db(engine), make_db(target_engine)  # new files / databases
    reinit(target)
    replayed = cli("replay", str(package), db=fresh_vault)
    assert replayed.code == 0, replayed.err
    restored = cli("app", "restore", target, "--json", db=fresh_vault)
    assert restored.code == 0, restored.err
    assert show(target) == before
    head = json.loads(cli("status", "--json", db=fresh_vault).out)["head_seq"]
    again = cli("app", "capture", db=fresh_vault)
    assert (again.code, again.out) == (0, "nothing changed: no events appended\n"), again.err

    from dms_project import django  # a group in the restored application: excluded
    django(target, "shell", "-c", "from django.contrib.auth.models import Group; "
                                  "Group.objects.create(name='auditors')")
    assert "nothing changed" in cli("app", "capture", db=fresh_vault).out
    reattached = cli("app", "attach", target, "--json", db=fresh_vault)  # no --exclude given
    assert reattached.code == 0, reattached.err
    assert json.loads(reattached.out)["exclude"] == ["*group*"]
    assert json.loads(cli("status", "--json", db=fresh_vault).out)["head_seq"] == head
    django(target, "shell", "-c", "from django.contrib.auth.models import User; "
                                  "User.objects.filter(username='author01').update(first_name='C')")
    changed = json.loads(cli("app", "capture", "--json", db=fresh_vault).out)
    assert (changed["updated"], changed["events"]) == (1, 1)


def test_a_refused_restore_is_one_line_and_leaves_the_target_unchanged(
        cli: Callable[..., Result], make_db: Callable[[str], str]) -> None:
    app_url, vault, target = make_db("sqlite"), make_db("sqlite"), make_db("sqlite")
    production(app_url)
    assert cli("app", "attach", app_url, db=vault).code == 0
    assert cli("app", "capture", db=vault).code == 0
    reinit(target)
    from dms_project import django
    django(target, "shell", "-c", "from django.contrib.auth.models import User; "
                                  "User.objects.create_user('stranger')")
    untouched = show(target)
    refused = cli("app", "restore", target, db=vault)
    assert refused.code != 0 and "stranger" in refused.err
    assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
    assert show(target) == untouched
    dry = cli("app", "restore", target, "--keep-extra", "--dry-run", db=vault)
    assert dry.code == 0, dry.err
    assert show(target) == untouched


def test_capture_before_attach_is_one_line(cli: Callable[..., Result],
                                           make_db: Callable[[str], str]) -> None:
    vault = make_db("sqlite")
    assert cli("init", db=vault).code == 0
    result = cli("app", "capture", db=vault)
    assert result.code == 2 and "app attach" in result.err


def test_the_stored_url_has_no_password() -> None:
    from eventvault.app.vault_link import public_url
    assert public_url("postgresql://app:s3cret@db:5432/dms") == "postgresql://app@db:5432/dms"


def test_reattach_unchanged_and_restore_at_a_seq(cli: Callable[..., Result],
                                                  make_db: Callable[[str], str]) -> None:
    app_url, vault, target = make_db("sqlite"), make_db("sqlite"), make_db("sqlite")
    production(app_url)
    assert cli("app", "attach", app_url, db=vault).code == 0
    assert cli("app", "capture", db=vault).code == 0
    head = json.loads(cli("status", "--json", db=vault).out)["head_seq"]
    attached = cli("app", "attach", app_url, db=vault)  # nothing migrated: nothing to apply
    assert attached.code == 0, attached.err
    assert "auth_user" in attached.out
    assert json.loads(cli("status", "--json", db=vault).out)["head_seq"] == head
    moment = datetime.now(UTC).isoformat()  # after the first capture, before the second
    from dms_project import django
    django(app_url, "shell", "-c", "from django.contrib.auth.models import User; "
                                   "User.objects.create_user('late')")
    changed = cli("app", "capture", "--json", db=vault)
    assert json.loads(changed.out)["created"] == 1
    reinit(target)
    restored = cli("app", "restore", target, "--seq", str(head), "--json", db=vault)
    assert restored.code == 0, restored.err
    assert json.loads(restored.out)["counts"]["auth_user"] == 10
    assert show(target)["counts"]["User"] == 10
    # the restored application is the earlier state: a capture records the user gone
    gone = json.loads(cli("app", "capture", "--json", db=vault).out)
    assert (gone["deleted"], gone["events"]) == (1, 1)

    at_target = make_db("sqlite")
    reinit(at_target)
    at = cli("app", "restore", at_target, "--at", moment, "--json", db=vault)
    assert at.code == 0, at.err
    assert json.loads(at.out)["counts"]["auth_user"] == 10
    assert show(at_target) == show(target)
    latest = make_db("sqlite")  # and the head: the late user is gone since
    reinit(latest)
    assert json.loads(cli("app", "restore", latest, "--json", db=vault).out)["counts"][
        "auth_user"] == 10
    both = cli("app", "restore", latest, "--seq", "1", "--at", moment, db=vault)
    assert both.code == 2 and "not both" in both.err


def test_reattach_after_a_migration_evolves_the_schema(cli: Callable[..., Result],
                                                       tmp_path: Path) -> None:
    app = tmp_path / "app.db"
    vault = f"sqlite:///{tmp_path / 'vault.db'}"
    with sqlite3.connect(app) as connection:
        connection.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL "
                           "UNIQUE)")
        connection.execute("CREATE TABLE log (at TEXT)")
        connection.execute("INSERT INTO item (name) VALUES ('a')")
    refused = cli("app", "attach", f"sqlite:///{app}", db=vault)
    assert refused.code != 0 and "--exclude log" in refused.err and "Traceback" not in refused.err
    attached = cli("app", "attach", f"sqlite:///{app}", "--exclude", "l*", db=vault)
    assert attached.code == 0, attached.err
    assert "log" in attached.out and "excluded" in attached.out
    assert cli("app", "capture", db=vault).code == 0
    with sqlite3.connect(app) as connection:  # the application migrates
        connection.execute("ALTER TABLE item ADD COLUMN note TEXT")
        connection.execute("UPDATE item SET note = 'n'")
    again = cli("app", "attach", f"sqlite:///{app}", "--exclude", "l*", db=vault)
    assert again.code == 0, again.err
    assert "schema version 2" in again.out and "note" in again.out
    changed = json.loads(cli("app", "capture", "--json", db=vault).out)
    assert (changed["updated"], changed["events"]) == (1, 1)
    assert "nothing changed" in cli("app", "capture", db=vault).out


def test_the_readme_app_commands_run_as_shown(cli: Callable[..., Result],
                                               make_db: Callable[[str], str],
                                               tmp_path: Path) -> None:
    """The README's two command blocks of "Protecting an existing application", run with
    this test's databases in place of the README's URLs."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Protecting an existing application", 1)[1].split("\n## ", 1)[0]
    protect, disaster = re.findall(r"```sh\n(.*?)```", section, re.S)
    app_url, target = make_db("sqlite"), make_db("sqlite")
    places = {"sqlite:///dms-vault.db": make_db("sqlite"), "sqlite:///new-vault.db":
              make_db("sqlite"), "postgresql://dms@db/dms": app_url,
              "postgresql://dms@db/dms_new": target, "dms.evpkg": str(tmp_path / "dms.evpkg")}

    def run(block: str) -> list[Result]:
        results = []
        for line in block.strip().splitlines():
            words = [places.get(w, w) for w in shlex.split(line)]
            assert words[0] == "eventvault", line
            results.append(cli(*words[1:]))
            assert results[-1].code == 0, (line, results[-1].err)
        return results

    production(app_url)
    before = show(app_url)
    run(protect)
    reinit(target)  # the application's own migrate and init
    done = run(disaster)
    assert show(target) == before
    assert done[-1].out == "nothing changed: no events appended\n"


def _live(vault_url: str, at_seq: int | None = None) -> dict[str, dict[str, dict]]:
    """The vault's state of the application's types: type -> UUID -> fields."""
    import eventvault
    with eventvault.Vault(vault_url) as vault:
        found: dict[str, dict[str, dict]] = {}
        for item in vault.export(at_seq=at_seq):
            found.setdefault(item["type"], {})[item["uuid"]] = item["fields"]
        return found


@pytest.mark.parametrize(("engine", "vault_engine"), [
    ("sqlite", "sqlite"), ("postgresql", "postgresql"), ("sqlite", "mariadb")])
def test_rows_a_restore_at_an_earlier_point_brings_back_keep_their_identity(
        cli: Callable[..., Result], make_db: Callable[[str], str], engine: str,
        vault_engine: str) -> None:
    """Rows deleted since the point restored come back in the vault as their deleted
    entity's successor (identity.successor: the log never re-creates a deleted UUID), with
    or without a natural key; the next capture of the restored application records nothing,
    and a later change is an update of that successor."""
    from dms_project import django

    from eventvault.app.identity import successor
    app_url, vault, target = make_db(engine), make_db(vault_engine), make_db(engine)
    production(app_url)
    before = show(app_url)
    assert cli("app", "attach", app_url, db=vault).code == 0
    assert cli("app", "capture", db=vault).code == 0
    point = json.loads(cli("status", "--json", db=vault).out)["head_seq"]
    django(app_url, "shell", "-c", "from dms.models import Document, Placeholder; "
                                   "Document.objects.order_by('id').last().delete(); "
                                   "Placeholder.objects.order_by('id').first().delete()")
    gone = json.loads(cli("app", "capture", "--json", db=vault).out)
    assert gone["deleted"] >= 2 and gone["events"] == gone["deleted"]
    deleted = {(t, e) for t, entities in _live(vault, point).items() for e in entities} - {
        (t, e) for t, entities in _live(vault).items() for e in entities}
    assert {t for t, _ in deleted} >= {"dms_document", "dms_placeholder"}

    reinit(target)
    restored = cli("app", "restore", target, "--seq", str(point), db=vault)
    assert restored.code == 0, restored.err
    assert show(target) == before
    live = _live(vault)
    assert all(successor(e) in live[t] for t, e in deleted)  # recorded by the restore
    again = cli("app", "capture", db=vault)
    assert (again.code, again.out) == (0, "nothing changed: no events appended\n"), again.err

    django(target, "shell", "-c", "from dms.models import Document, Placeholder; "
                                  "d = Document.objects.order_by('id').last(); "
                                  "d.title = 'back'; d.save(); "
                                  "Placeholder.objects.order_by('id').first().delete()")
    changed = json.loads(cli("app", "capture", "--json", db=vault).out)
    assert (changed["updated"], changed["created"], changed["deleted"]) == (1, 0, 1)
    # a natural-key row deleted and created again in the application: its next successor
    django(target, "shell", "-c", "from dms.models import Placeholder; "
                                  "Placeholder.objects.create(key='placeholder_01', value='v')")
    changed = json.loads(cli("app", "capture", "--json", db=vault).out)
    assert (changed["created"], changed["events"]) == (1, 1), changed
    assert {successor(successor(e)) for t, e in deleted if t == "dms_placeholder"} <= set(
        _live(vault)["dms_placeholder"])
    # a vault holding successors restores its head, and a capture then records nothing
    latest = make_db(engine)
    reinit(latest)
    restored = cli("app", "restore", latest, db=vault)
    assert restored.code == 0, restored.err
    assert show(latest) == show(target)
    again = cli("app", "capture", db=vault)
    assert (again.code, again.out) == (0, "nothing changed: no events appended\n"), again.err
