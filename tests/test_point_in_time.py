"""Point in time: export, snapshot and replay as of a moment or a seq, deleted entities included."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest


def now_iso() -> str:
    time.sleep(0.01)  # events before and after this moment get distinct timestamps
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")  # no zone: means UTC
    time.sleep(0.01)
    return moment


def export(cli, db: str, *args: str) -> list[str]:
    result = cli("export", *args, db=db)
    assert result.code == 0, result.err
    return [line for line in result.lines if '"type":"restore_job"' not in line]


def head_seq(cli, db: str) -> int:
    return json.loads(cli("status", "--json", db=db).out)["head_seq"]


@pytest.fixture
def history(demo_db: str, cli) -> dict:
    """A vault whose state changes after a remembered moment: an update and a delete."""
    db = demo_db
    doomed = cli("document", "add", "Doomed memo", "--author", "author01", "--reviewer",
                 "reviewer01", "--as", "author01", db=db).out.strip()
    moment = now_iso()
    state_then, seq_then = export(cli, db), head_seq(cli, db)
    assert cli("document", "update", doomed, "--set", "title=Doomed memo v2", "--as", "admin",
               "--reason", "last edit", db=db).code == 0
    assert cli("document", "delete", doomed, "--as", "admin", "--reason", "obsolete",
               db=db).code == 0
    assert cli("user", "add", "latecomer", "--as", "admin", db=db).code == 0
    return {"db": db, "doomed": doomed, "moment": moment, "state": state_then, "seq": seq_then}


def test_export_as_of_a_moment_and_a_seq(history: dict, cli) -> None:
    db = history["db"]
    assert export(cli, db, "--at", history["moment"]) == history["state"]
    assert export(cli, db, "--seq", str(history["seq"])) == history["state"]
    assert export(cli, db, "--at", history["moment"] + "Z") == history["state"]
    assert history["doomed"] not in "".join(export(cli, db))


def test_replay_to_a_moment_brings_back_a_deleted_entity(history: dict, cli, make_db,
                                                          tmp_path: Path) -> None:
    package = tmp_path / "all.evpkg"
    assert cli("snapshot", "-o", str(package), db=history["db"]).code == 0
    for engine in ("sqlite", "postgresql"):
        target = make_db(engine)
        result = cli("replay", str(package), "--at", history["moment"], db=target)
        assert result.code == 0, result.err
        restored = export(cli, target)
        assert restored == history["state"]
        doomed = next(json.loads(line) for line in restored if history["doomed"] in line)
        assert doomed["fields"]["title"] == "Doomed memo"
        users = {json.loads(line)["uuid"] for line in restored if '"type":"user"' in line}
        assert doomed["fields"]["author"] in users and doomed["fields"]["reviewer"] in users
        assert "latecomer" not in "".join(restored)


def test_replay_and_snapshot_to_a_seq(history: dict, cli, make_db, tmp_path: Path) -> None:
    db, seq = history["db"], history["seq"]
    full, cut = tmp_path / "full.evpkg", tmp_path / "cut.evpkg"
    assert cli("snapshot", "-o", str(full), db=db).code == 0
    assert cli("snapshot", "-o", str(cut), "--seq", str(seq), db=db).code == 0
    verified = cli("verify", str(cut))
    assert verified.code == 0 and f"to seq {seq}" in verified.out
    by_seq, from_cut = make_db("sqlite"), make_db("sqlite")
    assert cli("replay", str(full), "--seq", str(seq), db=by_seq).code == 0
    replayed = cli("replay", str(cut), db=from_cut)
    assert replayed.code == 0 and f"verified against {cut}'s head" in replayed.out
    assert export(cli, by_seq) == export(cli, from_cut) == history["state"]


@pytest.mark.parametrize("args, message", [
    (["--at", "1999-01-01T00:00:00"], "before the first event"),
    (["--at", "yesterday"], "malformed time"),
    (["--seq", "0"], "outside"),
    (["--seq", "999999"], "outside"),
])
def test_points_outside_the_log_are_clear_errors(history: dict, cli, make_db, tmp_path: Path,
                                                 args: list[str], message: str) -> None:
    package = tmp_path / "all.evpkg"
    assert cli("snapshot", "-o", str(package), db=history["db"]).code == 0
    target = make_db("sqlite")
    result = cli("replay", str(package), *args, db=target)
    assert result.code == 2 and message in result.err
    assert not Path(target.removeprefix("sqlite:///")).exists()
    exported = cli("export", *args, db=history["db"])
    assert exported.code == 2 and exported.out == ""
