"""The audit trail survives a restore: a restored vault answers every audit query as the
original did, and the restore itself is on the record with its requester."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any


def answers(cli, db: str, until: str, subjects: dict[str, list[str]]) -> dict[str, str]:
    """Every audit query we can think of, as JSON, bounded to the original's last moment."""
    found: dict[str, str] = {}
    queries = [["audit", "log", "--limit", "0", "--until", until]]
    queries += [["audit", "log", "--type", t, "--limit", "0", "--until", until]
                for t in ("user", "document", "workflow", "restore_job")]
    queries += [["audit", "actor", u, "--limit", "0", "--until", until] for u in subjects["users"]]
    queries += [["audit", "history", ref] for ref in subjects["entities"]]
    queries += [["audit", "as-of", ref, "--at", until] for ref in subjects["live"]]
    for query in queries:
        result = cli(*query, "--json", db=db)
        assert result.code == 0, (query, result.err)
        found[" ".join(query)] = result.out
    return found


def test_a_restored_vault_answers_audit_queries_like_the_original(demo_db: str, cli, make_db,
                                                                 tmp_path: Path) -> None:
    db = demo_db
    entities = [json.loads(line) for line in cli("export", db=db).lines]
    documents = [e["uuid"] for e in entities if e["type"] == "document"]
    assert cli("document", "update", documents[0], "--set", "status=in_review", "--as",
               "admin", "--reason", "compliance check", db=db).code == 0
    scratch = cli("document", "add", "Scratch", "--author", "author01", "--as", "author01",
                  db=db).out.strip()
    assert cli("document", "delete", scratch, "--as", "admin", "--reason", "cleanup",
               db=db).code == 0
    assert cli("user", "add", "intruder", "--as", "viewer01", db=db).code == 1  # on record
    last = json.loads(cli("audit", "log", "--json", "--limit", "0", db=db).lines[-1])
    live = [e["uuid"] for e in entities if e["type"] in ("document", "workflow")]
    subjects = {
        "users": [e["fields"]["username"] for e in entities if e["type"] == "user"],
        "entities": [*live, scratch],
        "live": live,
    }
    original = answers(cli, db, last["recorded_at"], subjects)

    package = tmp_path / "audit.evpkg"
    assert cli("snapshot", "-o", str(package), db=db).code == 0
    restored_db = make_db("postgresql" if db.startswith("sqlite") else "sqlite")
    assert cli("replay", str(package), "--as", "admin", db=restored_db).code == 0
    # The deleted document is answered for too (its history ends with the delete).
    assert original[f"audit history {scratch}"].splitlines()[-1].count('"deleted"') == 1
    assert answers(cli, restored_db, last["recorded_at"], subjects) == original

    jobs = [json.loads(line) for line in cli("audit", "log", "--type", "restore_job", "--json",
                                             "--limit", "0", db=restored_db).lines]
    newest = jobs[-1]
    assert newest["seq"] == last["seq"] + 1 and newest["actor"] == "admin"
    assert newest["changes"]["requested_by"]["new"]["name"] == "admin"


def test_status_and_history_read_alike_on_every_engine(demo_db: str, cli, make_db,
                                                       tmp_path: Path) -> None:
    """`status` and `audit history` are plain SQL on every engine (reader.py): on another
    engine the same events give the same history, byte for byte in every format, and
    `status` says what `verify` recomputes and what `export` holds on each."""
    entities = [json.loads(line) for line in cli("export", db=demo_db).lines]
    refs = ["admin", "workflow_state:draft",
            *(e["uuid"] for e in entities if e["type"] in ("document", "workflow"))]

    def histories(db: str) -> dict[tuple[str, str], str]:
        found = {}
        for ref in refs:
            for fmt in ("", "--json", "--csv"):
                result = cli("audit", "history", ref, *([fmt] if fmt else []), db=db)
                assert result.code == 0, result.err
                found[ref, fmt] = result.out
        return found

    def status(db: str) -> dict[str, Any]:
        found = json.loads(cli("status", "--json", db=db).out)
        recomputed = json.loads(cli("verify", "--json", db=db).out)
        assert [found[k] for k in ("head_seq", "head_hash", "state_digest")] == \
            [recomputed[k] for k in ("head_seq", "head_hash", "state_digest")]
        held = Counter(json.loads(line)["type"] for line in cli("export", db=db).lines)
        assert found["counts"] == {name: held[name] for name in found["counts"]}
        return found

    original, before = histories(demo_db), status(demo_db)
    package = tmp_path / "same.evpkg"
    assert cli("snapshot", "-o", str(package), db=demo_db).code == 0
    restored = make_db("postgresql" if demo_db.startswith("sqlite") else "sqlite")
    assert cli("replay", str(package), "--as", "admin", db=restored).code == 0
    assert histories(restored) == original
    after = status(restored)  # the restore itself is one event more: its restore_job
    assert after["head_seq"] == before["head_seq"] + 1
    assert after["counts"] == {**before["counts"],
                               "restore_job": before["counts"]["restore_job"] + 1}
    assert after["schema_revision"] == before["schema_revision"]
