"""`verify` reads what `replay` reads: encrypted single packages, s3:// objects, and the
chain a repository picks for its latest point (--repo)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import ok, run_cli
from repo_stores import moto_endpoint  # noqa: F401 - fixture
from test_repository import CHEAP, PASSPHRASE, s3_environment

from eventvault.repo.locations import open_store


def head(db: str) -> dict:
    return json.loads(ok("status", "--json", db=db).out)


def test_verify_an_encrypted_package(tmp_path: Path, vault: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sealed = tmp_path / "sealed.evpkg"
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    ok("snapshot", "-o", str(sealed), "--encrypt", db=vault)
    checked = json.loads(ok("verify", str(sealed), "--json").out)
    assert checked["ok"] and checked["head_hash"] == head(vault)["head_hash"]
    assert checked["checked"] == str(sealed)
    assert ok("verify", str(sealed)).out.startswith(f"OK {sealed}:")
    for passphrase, message in ((None, "is encrypted: give its passphrase"),
                                ("not it", "wrong passphrase")):
        if passphrase is None:
            monkeypatch.delenv("EVENTVAULT_PASSPHRASE")
        else:
            monkeypatch.setenv("EVENTVAULT_PASSPHRASE", passphrase)
        refused = run_cli("verify", str(sealed))
        assert refused.code == 1 and message in refused.err, refused.err
        assert len(refused.err.splitlines()) == 1 and "not an EventVault package" not in refused.err
    passfile = tmp_path / "pass"
    passfile.write_text(PASSPHRASE + "\n")
    ok("verify", str(sealed), "--passphrase-file", str(passfile))
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x10
    sealed.write_bytes(bytes(data))
    damaged = run_cli("verify", str(sealed), "--passphrase-file", str(passfile))
    assert damaged.code == 1 and "authentication failed" in damaged.err
    assert len(damaged.err.splitlines()) == 1


def test_verify_s3_objects_and_repositories(tmp_path: Path, vault: str, moto_endpoint: str,  # noqa: F811
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    s3_environment(monkeypatch, moto_endpoint)
    open_store("s3://eventvault-tests/").prepare()
    where = f"s3://eventvault-tests/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    ok("snapshot", "-o", f"{where}/plain.evpkg", db=vault)
    ok("snapshot", "-o", f"{where}/sealed.evpkg", "--encrypt", db=vault)
    for name in ("plain", "sealed"):
        checked = json.loads(ok("verify", f"{where}/{name}.evpkg", "--json").out)
        assert checked["ok"] and checked["head_hash"] == head(vault)["head_hash"]
    missing = run_cli("verify", f"{where}/nothing.evpkg")
    assert missing.code == 2 and "does not exist" in missing.err

    repository = f"{where}/repository"
    ok("repo", "init", repository, "--encrypt", *CHEAP)
    ok("snapshot", "--repo", repository, db=vault)
    ok("user", "add", "ines", db=vault)
    ok("snapshot", "--repo", repository, db=vault)
    checked = json.loads(ok("verify", "--repo", repository, "--json").out)
    assert checked["ok"] and checked["head_hash"] == head(vault)["head_hash"]
    assert checked["head_seq"] == head(vault)["head_seq"]
    assert checked["checked"].startswith(repository)
    assert ok("verify", "--repo", repository).out.startswith(f"OK {repository}")
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", "not it")
    refused = run_cli("verify", "--repo", repository)
    assert refused.code == 1 and len(refused.err.splitlines()) == 1, refused.err


def test_verify_repo_finds_a_damaged_package(tmp_path: Path, vault: str) -> None:
    repository = tmp_path / "repository"
    ok("repo", "init", str(repository))
    ok("snapshot", "--repo", str(repository), db=vault)
    ok("verify", "--repo", str(repository))
    (package,) = (repository / "packages").rglob("*")
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(bytes(data))
    damaged = run_cli("verify", "--repo", str(repository))
    assert damaged.code == 1 and "does not match" in damaged.err
    both = run_cli("verify", "x.evpkg", "--repo", str(repository))
    assert both.code == 2 and "not both" in both.err
