"""An encrypted repository's config is authenticated: someone who can write to the bucket
cannot make a client upload new snapshots unencrypted, nor change the config unnoticed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import ok, run_cli
from test_repository import CHEAP, PASSPHRASE


@pytest.fixture
def encrypted(tmp_path: Path, vault: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", PASSPHRASE)
    location = tmp_path / "repository"
    ok("repo", "init", str(location), "--encrypt", *CHEAP)
    ok("snapshot", "--repo", str(location), db=vault)
    return location


def packages(location: Path) -> set[Path]:
    return set((location / "packages").iterdir())


def refused_and_nothing_written(location: Path, vault: str, message: str) -> None:
    before = packages(location)
    ok("user", "add", f"u{uuid.uuid4().hex[:8]}", db=vault)
    result = run_cli("snapshot", "--repo", str(location), db=vault)
    assert result.code == 1 and message in result.err, result.err
    assert len(result.err.splitlines()) == 1
    assert packages(location) == before


def test_config_downgraded_to_none_is_refused(encrypted: Path, vault: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.loads((encrypted / "config").read_text())
    assert "mac" in config
    downgraded = {**config, "encryption": "none"}
    del downgraded["mac"]
    (encrypted / "config").write_text(json.dumps(downgraded))
    refused_and_nothing_written(encrypted, vault, "config was tampered with")
    # The keys gone too: the sealed index objects still give it away.
    for key in (encrypted / "keys").iterdir():
        key.unlink()
    refused_and_nothing_written(encrypted, vault, "holds encrypted index objects")
    monkeypatch.delenv("EVENTVAULT_PASSPHRASE")
    assert run_cli("repo", "list", str(encrypted)).code == 1


def test_an_emptied_repository_is_not_written_in_plaintext_when_a_passphrase_is_given(
        encrypted: Path, vault: str) -> None:
    """Everything deleted and a fresh unencrypted config written: the client's passphrase is
    the one sign left that the repository was meant to be encrypted."""
    config = json.loads((encrypted / "config").read_text())
    for folder in ("keys", "index", "packages"):
        for item in (encrypted / folder).iterdir():
            item.unlink()
    (encrypted / "config").write_text(json.dumps(
        {k: v for k, v in config.items() if k != "mac"} | {"encryption": "none"}))
    refused_and_nothing_written(encrypted, vault, "refusing to upload in plaintext")


def test_any_other_change_to_an_encrypted_config_is_refused(encrypted: Path,
                                                            vault: str) -> None:
    config = json.loads((encrypted / "config").read_text())
    (encrypted / "config").write_text(json.dumps({**config, "note": "mine"}))
    refused_and_nothing_written(encrypted, vault, "changed by someone without its key")
    (encrypted / "config").write_text(json.dumps(config))
    ok("snapshot", "--repo", str(encrypted), db=vault)


def test_an_encrypted_config_without_a_mac_still_opens(encrypted: Path, vault: str) -> None:
    """Repositories made before the config was authenticated keep working."""
    config = json.loads((encrypted / "config").read_text())
    del config["mac"]
    (encrypted / "config").write_text(json.dumps(config))
    ok("user", "add", "ines", db=vault)
    ok("snapshot", "--repo", str(encrypted), db=vault)
    ok("repo", "check", str(encrypted), "--read-data")
