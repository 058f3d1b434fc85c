"""--json and --quiet for the repository paths: `snapshot --repo`, `snapshot -o s3://...` or
`--encrypt`, `rebuild` and the reporting `repo` commands print exactly one JSON object (or,
quiet, nothing) like every other reporting command."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import Result, run_cli
from repo_stores import moto_endpoint  # noqa: F401 - fixture
from test_repository import CHEAP, PASSPHRASE, s3_environment

from eventvault.repo.locations import open_store


def one_object(result: Result) -> dict:
    assert result.code == 0, result.err
    assert len(result.lines) == 1, result.out
    return json.loads(result.out)


def silent(result: Result) -> None:
    assert result.code == 0, result.err
    assert result.out == "" and result.err == ""


def head(db: str) -> dict:
    return json.loads(run_cli("status", "--json", db=db).out)


def test_repository_commands_json_and_quiet(tmp_path: Path, vault: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    location = str(tmp_path / "repository")
    made = one_object(run_cli("repo", "init", location, "--encrypt", *CHEAP, "--json"))
    assert made["location"] == location and made["encrypted"] is True and len(made["id"]) == 32
    first = one_object(run_cli("snapshot", "--repo", location, "--json", db=vault))
    assert first["base"] is None and first["encrypted"] is True and first["first_seq"] == 1
    assert (first["last_seq"], first["head_hash"]) == (head(vault)["head_seq"],
                                                         head(vault)["head_hash"])
    assert first["bytes"] > 0 and len(first["package"]) == 64
    same = one_object(run_cli("snapshot", "--repo", location, "--json", db=vault))
    assert same["package"] is None and same["base"] == first["package"]  # nothing new
    assert run_cli("user", "add", "ines", db=vault).code == 0
    silent(run_cli("snapshot", "--repo", location, "-q", db=vault))
    checked = one_object(run_cli("repo", "check", location, "--read-data", "--json"))
    assert checked == {"location": location, "ok": True, "packages": 2, "read": 2,
                       "problems": [], "notes": []}
    silent(run_cli("repo", "check", location, "--read-data", "-q"))
    forgot = one_object(run_cli("repo", "forget", location, "--keep-last", "1", "--dry-run",
                                "--json"))
    assert forgot["dry_run"] is True and forgot["removed"] == 0 and forgot["packages"] == 2
    assert [d["keep"] for d in forgot["decisions"]] == [True, True]
    assert forgot["decisions"][0]["reasons"]
    silent(run_cli("repo", "forget", location, "--keep-last", "1", "-q"))
    keys = one_object(run_cli("repo", "key", "list", location, "--json"))["keys"]
    monkeypatch.setenv("EVENTVAULT_NEW_PASSPHRASE", "second")
    added = one_object(run_cli("repo", "key", "add", location, "--json"))["added"]
    assert one_object(run_cli("repo", "key", "list", location, "--json"))["keys"] == sorted(
        [*keys, added])
    removed = one_object(run_cli("repo", "key", "remove", location, added, "--json"))
    assert removed["removed"] == added
    monkeypatch.setenv("EVENTVAULT_NEW_PASSPHRASE", "third")
    swapped = one_object(run_cli("repo", "key", "passwd", location, "--json"))
    assert swapped["removed"] == keys[0] and swapped["added"] != keys[0]
    # A failed check is the one object, then exit 1.
    (package,) = [p for p in (Path(location) / "packages").rglob("*") if p.is_file()][:1]
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(bytes(data))
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", "third")
    failed = run_cli("repo", "check", location, "--read-data", "--json")
    assert failed.code == 1 and len(failed.lines) == 1
    report = json.loads(failed.out)
    assert report["ok"] is False and report["problems"]


def test_snapshot_to_s3_and_encrypted_json_and_quiet(tmp_path: Path, vault: str,
                                                     moto_endpoint: str,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    sealed = tmp_path / "sealed.evpkg"
    wrote = one_object(run_cli("snapshot", "-o", str(sealed), "--encrypt", "--json", db=vault))
    assert set(wrote) == {"path", "events", "first_seq", "last_seq", "bytes", "frames",
                          "head_hash", "state_digest", "since", "warnings", "encrypted"}
    assert wrote["encrypted"] is True and wrote["bytes"] == sealed.stat().st_size
    assert wrote["head_hash"] == head(vault)["head_hash"]
    silent(run_cli("snapshot", "-o", str(tmp_path / "quiet.evpkg"), "--encrypt", "-q",
                   db=vault))
    s3_environment(monkeypatch, moto_endpoint)
    open_store("s3://eventvault-tests/").prepare()
    where = f"s3://eventvault-tests/{uuid.uuid4().hex[:12]}/plain.evpkg"
    remote = one_object(run_cli("snapshot", "-o", where, "--json", db=vault))
    assert remote["path"] == where and remote["encrypted"] is False
    assert remote["events"] == head(vault)["head_seq"]


def test_rebuild_json_and_quiet(vault: str) -> None:
    rebuilt = one_object(run_cli("rebuild", "--as", "admin", "--json", db=vault))
    assert rebuilt["differences"] == 0 and rebuilt["head_seq"] == head(vault)["head_seq"]
    assert rebuilt["state_digest"] == head(vault)["state_digest"]
    assert rebuilt["counts"]["document"] == 5
    silent(run_cli("rebuild", "--as", "admin", "-q", db=vault))
