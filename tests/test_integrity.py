"""Integrity: the state maintained with the log, drift of the tables, rebuild, witnesses.

Every figure a vault reports or packages comes from its log; the projection tables are only
compared with it. Tables changed behind the log's back are found by `verify`, never packaged,
never turned into a wrong event, and repaired by `rebuild`. A package kept elsewhere is the
witness that catches a log cut short or rewritten consistently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from test_reliability import COLUMNS_DIFFER, hex_literal, raw

from eventvault import log_state, schema, store
from eventvault.vault import Vault
from eventvault.verify import verify_vault

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0.1.0"  # written by 28ae138
FIRST_DOCUMENT = "(SELECT MIN(id) FROM documents)"


def status(cli, db: str) -> dict:
    result = cli("status", "--json", db=db)
    assert result.code == 0, result.err
    return json.loads(result.out)


def export(cli, db: str) -> list[dict]:
    return [json.loads(line) for line in cli("export", db=db).lines]


def first_document(cli, db: str) -> str:
    return next(e["uuid"] for e in export(cli, db) if e["type"] == "document")


def verified_digest(cli, db: str) -> str:
    result = cli("verify", db=db)
    assert result.code == 0, result.err
    return result.out.split("state digest ")[1].split()[0]


# --- the state maintained with every write ----------------------------------------------

def test_status_reads_the_state_maintained_with_every_write(demo_db: str, cli) -> None:
    document = first_document(cli, demo_db)
    assert cli("document", "update", document, "--set", "title=New", "--as", "admin",
               db=demo_db).code == 0
    assert cli("workflow", "start", document, "--as", "admin", db=demo_db).code == 0
    assert cli("user", "delete", "viewer01", "--as", "admin", db=demo_db).code == 0
    assert cli("user", "add", "x", "--as", "author01", db=demo_db).code == 1  # refused
    before = status(cli, demo_db)
    assert before["state_digest"] == verified_digest(cli, demo_db)
    assert before["counts"]["workflow"] == 5 and before["counts"]["user"] == 9
    # status reads the maintained values, not the tables: a row changed behind the log's
    # back changes nothing it reports.
    raw(demo_db, f"UPDATE documents SET title = 'T' WHERE id = {FIRST_DOCUMENT}",
        "DELETE FROM placeholders WHERE \"key\" = 'watermark'")
    assert status(cli, demo_db) == before


def test_entities_touched_several_times_in_one_transaction_keep_the_digest(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest is settled once per flush for each entity changed: entities created,
    changed again, deleted and recreated within one transaction, across flushes (two events
    a flush here), must leave exactly the digest and counts the log folds to."""
    monkeypatch.setattr(store.Appender, "FLUSH_EVERY", 2)
    vault = Vault(db_url)
    try:
        vault.init()
        with vault.write("admin", "setup") as commands:
            commands.add_user("ann", "author")
            kept = commands.add_document("Kept", "ann")
        with vault.write("admin", "busy") as commands:
            document = commands.add_document("Draft", "ann")
            for title in ("Draft 2", "Draft 3", "Draft 4"):
                commands.update_document(document, {"title": title})
            commands.update_document(kept, {"status": "in_review"})
            workflow = commands.start_workflow(document)
            commands.move_workflow(workflow, "in_review")
            commands.delete("workflow", commands.find(workflow, "workflow"))
            commands.update_document(kept, {"title": "Kept 2"})
            commands.delete_document(document)
            commands.add_user("ben", "viewer")
            commands.update_user("ben", {"role": "reviewer"})
        report = verify_vault(vault)
        assert report.ok, report.findings
        with vault.reading() as connection:
            maintained = log_state.load(connection)
            folded = log_state.compute(connection)
        assert maintained == folded and maintained.counts["document"] == 1
    finally:
        vault.close()


@pytest.mark.parametrize("statement, finding", [
    ("UPDATE log_state SET state_digest = '" + "0" * 64 + "'", "maintained state: digest"),
    ("UPDATE log_state SET counts = '{\"user\": 99}'", "maintained state: counts"),
    ("UPDATE log_state SET head_seq = head_seq + 1", "maintained state: recorded at seq"),
])
def test_verify_compares_the_maintained_state_with_the_log(demo_db: str, cli, statement: str,
                                                           finding: str) -> None:
    raw(demo_db, statement)
    result = cli("verify", db=demo_db)
    assert result.code == 1 and finding in result.err
    # A writer refuses to continue from a maintained state that is not at the log's head.
    if "head_seq" in statement:
        written = cli("user", "add", "x", "--as", "admin", db=demo_db)
        assert written.code == 1 and "maintained state digest is at seq" in written.err


def test_a_0_1_0_vault_upgraded_by_init_verifies(tmp_path: Path, cli) -> None:
    db = tmp_path / "v010.db"
    shutil.copy(FIXTURES / "vault.db", db)
    url = f"sqlite:///{db}"
    assert cli("status", db=url).code == 1  # an old schema: init first
    assert cli("init", db=url).code == 0
    digest = verified_digest(cli, url)
    assert status(cli, url)["state_digest"] == digest
    assert cli("user", "add", "newcomer", "--as", "admin", db=url).code == 0
    assert status(cli, url)["state_digest"] == verified_digest(cli, url)
    # Its packages (no vault id bound into the chain) verify and replay as they did.
    package = FIXTURES / "full.evpkg"
    assert cli("verify", str(package)).code == 0
    assert cli("replay", str(package), db=f"sqlite:///{tmp_path / 'restored.db'}").code == 0
    # A package kept from 0.1.0 witnesses the upgraded vault's log.
    assert cli("verify", "--against", str(package), db=url).code == 0


def test_an_upgrade_computes_the_state_from_the_log(demo_db: str, cli) -> None:
    expected = status(cli, demo_db)
    vault = Vault(demo_db)
    with vault.connect(write=True) as connection:  # back to the 0.1.0 schema
        from alembic import command

        command.downgrade(schema._config(connection), "0001")
    vault.close()
    assert cli("init", db=demo_db).code == 0
    assert status(cli, demo_db) == expected
    assert verified_digest(cli, demo_db) == expected["state_digest"]


# --- snapshot of drifted tables, and rebuild ---------------------------------------------

def test_a_snapshot_of_drifted_tables_packages_the_log(demo_db: str, cli,
                                                       tmp_path: Path) -> None:
    truth = export(cli, demo_db)
    raw(demo_db, f"UPDATE documents SET title = 'T' WHERE id = {FIRST_DOCUMENT}")
    package = tmp_path / "p.evpkg"
    result = cli("snapshot", "-o", str(package), db=demo_db)
    assert result.code == 0
    assert len(result.err.strip().splitlines()) == 1
    assert "tables have drifted" in result.err and "eventvault rebuild" in result.err
    assert cli("verify", str(package)).code == 0
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    assert cli("replay", str(package), db=target).code == 0
    restored = {e["uuid"]: e for e in export(cli, target)}
    assert all(restored[e["uuid"]] == e for e in truth)
    # No drift, no warning.
    assert cli("snapshot", "-o", str(tmp_path / "q.evpkg"), db=target).err == ""


def test_rebuild_repairs_every_kind_of_drift_and_leaves_the_log(demo_db: str, cli) -> None:
    truth = export(cli, demo_db)
    raw(demo_db,
        f"UPDATE documents SET title = 'T', version = version + 5 WHERE id = {FIRST_DOCUMENT}",
        "DELETE FROM placeholders WHERE \"key\" = 'watermark'",
        "INSERT INTO placeholders (uuid, version, \"key\", value, description) VALUES "
        "('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 1, 'forged', '', '')")
    assert cli("verify", db=demo_db).code == 1
    assert cli("rebuild", db=demo_db).code == 2  # --as is required
    refused = cli("rebuild", "--as", "author01", db=demo_db)
    assert refused.code == 1 and "may not rebuild" in refused.err
    last = cli("audit", "actor", "author01", "--json", db=demo_db).lines[-1]
    assert json.loads(last)["event_type"] == "access_denied"
    head = status(cli, demo_db)["head_hash"]
    result = cli("rebuild", "--as", "admin", db=demo_db)
    assert result.code == 0, result.err
    # the title and the version of one document, a row missing, a row forged
    assert "(4 differences repaired)" in result.out
    assert cli("verify", db=demo_db).code == 0
    assert status(cli, demo_db)["head_hash"] == head
    assert export(cli, demo_db) == truth
    assert cli("document", "update", first_document(cli, demo_db), "--set", "title=after",
               "--as", "admin", db=demo_db).code == 0
    assert cli("verify", db=demo_db).code == 0


def test_rebuild_refuses_a_damaged_log(demo_db: str, cli) -> None:
    raw(demo_db, "UPDATE events SET record = (SELECT record FROM events WHERE seq = 61) "
                 "WHERE seq = 60")
    result = cli("rebuild", "--as", "admin", db=demo_db)
    assert result.code == 1 and "log itself is damaged at seq 60" in result.err


# --- the version column ------------------------------------------------------------------

def test_a_drifted_version_is_found_and_never_written_into_the_log(demo_db: str, cli,
                                                                  tmp_path: Path) -> None:
    document = first_document(cli, demo_db)
    raw(demo_db, "UPDATE documents SET version = version + 5")
    result = cli("verify", db=demo_db)
    assert result.code == 1 and f"document {document} has version" in result.err
    updated = cli("document", "update", document, "--set", "title=x", "--as", "admin",
                  db=demo_db)
    assert updated.code == 1 and len(updated.err.strip().splitlines()) == 1
    assert "drifted from its log" in updated.err
    # The log is still sound: a package of it verifies.
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    assert cli("verify", str(package)).code == 0
    assert cli("rebuild", "--as", "admin", db=demo_db).code == 0
    assert cli("document", "update", document, "--set", "title=x", "--as", "admin",
               db=demo_db).code == 0
    assert cli("verify", db=demo_db).code == 0


def test_a_refusal_is_recorded_with_the_log_s_version(demo_db: str, cli) -> None:
    raw(demo_db, "UPDATE users SET version = version + 5 WHERE username = 'author01'")
    refused = cli("user", "add", "x", "--as", "author01", db=demo_db)
    assert refused.code == 1 and "may not create users" in refused.err
    assert cli("rebuild", "--as", "admin", db=demo_db).code == 0
    assert cli("verify", db=demo_db).code == 0


# --- the index columns and the vault id ---------------------------------------------------

def test_verify_checks_the_event_id_column(demo_db: str, cli) -> None:
    raw(demo_db, "UPDATE events SET event_id = '00000000-0000-4000-8000-000000000000' "
                 "WHERE seq = 5")
    result = cli("verify", db=demo_db)
    assert result.code == 1 and f"seq 5: {COLUMNS_DIFFER}" in result.err


def test_the_vault_id_is_bound_into_the_chain(demo_db: str, cli, tmp_path: Path) -> None:
    vault_id = cli("status", db=demo_db).out.split("vault id")[1].split()[0]
    first = json.loads(cli("audit", "log", "--json", db=demo_db).lines[0])
    assert first["reason"] == f"vault {vault_id} created"
    other = "11111111-1111-4111-8111-111111111111"
    raw(demo_db, f"UPDATE vault_meta SET value = '{other}' WHERE \"key\" = 'vault_id'")
    result = cli("verify", db=demo_db)
    assert result.code == 1 and f"binds vault {vault_id}" in result.err
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    result = cli("verify", str(package))
    assert result.code == 1 and f"names vault {other}" in result.err


# --- a kept package as the witness ---------------------------------------------------------

def test_verify_against_catches_a_deleted_tail(demo_db: str, cli, tmp_path: Path) -> None:
    before = status(cli, demo_db)
    assert cli("user", "add", "x", "--as", "author01", db=demo_db).code == 1  # on the record
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    assert cli("verify", "--against", str(package), db=demo_db).code == 0
    # The refusal removed, and everything derived from the log set back consistently:
    # plain verify cannot tell, the kept package can.
    raw(demo_db, f"DELETE FROM events WHERE seq > {before['head_seq']}",
        "UPDATE users SET version = version - 1 WHERE username = 'author01'",
        f"UPDATE log_state SET head_seq = {before['head_seq']}, "
        f"head_hash = {hex_literal(demo_db, bytes.fromhex(before['head_hash']))}")
    assert cli("verify", db=demo_db).code == 0
    result = cli("verify", "--against", str(package), db=demo_db)
    assert result.code == 1
    assert f"does not contain {package}'s head (seq {before['head_seq'] + 1})" in result.err


def test_verify_against_a_chain_catches_a_rewritten_log(demo_db: str, cli,
                                                        tmp_path: Path) -> None:
    full, increment = tmp_path / "full.evpkg", tmp_path / "inc.evpkg"
    assert cli("snapshot", "-o", str(full), db=demo_db).code == 0
    assert cli("user", "add", "x", "--as", "admin", db=demo_db).code == 0
    assert cli("snapshot", "-o", str(increment), "--since", str(full), db=demo_db).code == 0
    assert cli("verify", "--against", str(full), "--against", str(increment),
               db=demo_db).code == 0
    rewrite_consistently(demo_db)
    assert cli("verify", db=demo_db).code == 0
    result = cli("verify", "--against", str(full), "--against", str(increment), db=demo_db)
    assert result.code == 1 and "has another hash; the log was rewritten" in result.err
    damaged = tmp_path / "damaged.evpkg"
    damaged.write_bytes(full.read_bytes()[:-10])
    result = cli("verify", "--against", str(damaged), db=demo_db)
    assert result.code == 1 and "--against:" in result.err


def rewrite_consistently(db: str) -> None:
    """A forger with write access: every event's reason rewritten from seq 2 on, every hash
    after it recomputed, the maintained head set to match."""
    from eventvault import store
    from eventvault.events import chain_hash, event_id

    vault = Vault(db)
    with vault.reading() as connection:
        events = list(store.read_events(connection))
    vault.close()
    previous, statements = bytes(32), []
    for event in [events[0], events[1]._replace(reason="rewritten"), *events[2:]]:
        previous = chain_hash(previous, event.record())
        statements.append(
            f"UPDATE events SET reason = {repr(event.reason) if event.reason else 'NULL'}, "
            f"record = {hex_literal(db, event.record())}, hash = {hex_literal(db, previous)}, "
            f"event_id = '{event_id(previous)}' WHERE seq = {event.seq}")
    statements.append(f"UPDATE log_state SET head_hash = {hex_literal(db, previous)}")
    raw(db, *statements)


def test_verify_against_refuses_packages_with_packages(demo_db: str, cli,
                                                       tmp_path: Path) -> None:
    package = tmp_path / "p.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    result = cli("verify", str(package), "--against", str(package), db=demo_db)
    assert result.code == 2


def test_migrated_log_state_table_exists(db_url: str) -> None:
    Vault(db_url).init()
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT head_seq FROM log_state")).scalar() == 54
    engine.dispose()
