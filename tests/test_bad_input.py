"""Bad input anywhere: one clear line on stderr, the right exit code, never a traceback."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from eventvault.package_format import FORMAT_VERSION
from eventvault.vault import Vault


@pytest.fixture
def vault_file(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    Vault(url).init()
    return url


@pytest.fixture
def package(vault_file: str, cli, tmp_path: Path) -> Path:
    path = tmp_path / "good.evpkg"
    assert cli("snapshot", "-o", str(path), db=vault_file).code == 0
    return path


def one_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("eventvault: ") and "Traceback" not in result.err
    return lines[0]


@pytest.mark.parametrize("args, code, message", [
    (["status", "--nope"], 2, "No such option"),
    (["replay"], 2, "Missing argument"),
    (["demo", "--scale", "0"], 2, "--scale"),
    (["snapshot"], 2, "Missing option"),
    (["export", "--at", "yesterday"], 2, "malformed time"),
    (["export", "--seq", "many"], 2, "not a valid integer"),
    (["audit", "log", "--since", "2026-13-45"], 2, "malformed time"),
    (["audit", "history", "user:nobody"], 2, "nobody"),
    (["audit", "actor", "nobody"], 2, "nobody"),
    (["audit", "as-of", "user:admin", "--at", "1990-01-01"], 1, "did not exist"),
    (["document", "update", "11111111-2222-4333-8444-555555555555", "--set", "title=x"], 2,
     "no document"),
    (["replay", "/no/such/file.evpkg"], 1, "file.evpkg"),
    (["verify", "/no/such/file.evpkg"], 1, "file.evpkg"),
    (["snapshot", "-o", "/no/such/directory/x.evpkg"], 1, "directory"),
    (["snapshot", "-o", "x.evpkg", "--since", "/no/such/base.evpkg"], 1, "base.evpkg"),
    (["snapshot", "-o", "x.evpkg", "--seq", "99999"], 2, "beyond the vault's head"),
])
def test_bad_requests(vault_file: str, cli, args: list[str], code: int, message: str,
                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(*args, db=vault_file)
    assert result.code == code, result.err
    assert message in one_line(result)


@pytest.mark.parametrize("url, code, message", [
    ("postgresql://postgres@127.0.0.1:1/nothing", 1, "cannot open database"),
    ("postgress://postgres@127.0.0.1/test", 2, "postgress"),
    ("sqlte:///vault.db", 2, "sqlte"),
    ("not a url at all", 2, "malformed database URL"),
    ("sqlite:////no/such/directory/vault.db", 1, "no such vault"),
])
def test_bad_database_urls(cli, url: str, code: int, message: str) -> None:
    result = cli("status", db=url)
    assert result.code == code, result.err
    assert message in one_line(result)


def test_a_missing_postgres_database_is_named(cli) -> None:
    from conftest import PG_SERVER, postgres_problem

    if postgres_problem():
        pytest.skip(postgres_problem() or "")
    url = PG_SERVER.rsplit("/", 1)[0] + "/no_such_database_here"
    result = cli("status", db=url)
    assert result.code == 1 and "no_such_database_here" in one_line(result)


def test_a_package_from_a_newer_format_is_refused_with_advice(package: Path, cli,
                                                              tmp_path: Path) -> None:
    newer = tmp_path / "newer.evpkg"
    data = bytearray(package.read_bytes())
    data[16:20] = struct.pack("<I", FORMAT_VERSION + 1)  # the header's format version
    newer.write_bytes(bytes(data))
    for args in (["verify", str(newer)], ["replay", str(newer)]):
        result = cli(*args, db=f"sqlite:///{tmp_path / 'target.db'}")
        assert result.code == 1
        assert f"format version {FORMAT_VERSION + 1}" in one_line(result)
        assert "upgrade eventvault" in result.err


@pytest.mark.parametrize("content", [b"", b"hello, not a package", bytes(range(256)) * 40])
def test_things_that_are_not_packages(cli, tmp_path: Path, content: bytes) -> None:
    fake = tmp_path / "fake.evpkg"
    fake.write_bytes(content)
    for args in (["verify", str(fake)], ["replay", str(fake)]):
        result = cli(*args, db=f"sqlite:///{tmp_path / 'target.db'}")
        assert result.code == 1
        one_line(result)
    assert not (tmp_path / "target.db").exists()


def test_a_directory_is_not_a_package(cli, tmp_path: Path) -> None:
    result = cli("verify", str(tmp_path))
    assert result.code == 1 and "directory" in one_line(result)


def test_an_existing_package_is_not_overwritten(vault_file: str, package: Path, cli) -> None:
    before = package.read_bytes()
    result = cli("snapshot", "-o", str(package), db=vault_file)
    assert result.code == 2 and "exists already" in one_line(result)
    assert package.read_bytes() == before


def test_the_installed_command_never_shows_a_traceback(tmp_path: Path) -> None:
    for args in (["--db", "sqlite:////no/such/dir/v.db", "status"],
                 ["replay", str(tmp_path)], ["--db", "postgresql://x@127.0.0.1:1/y", "init"]):
        done = subprocess.run([sys.executable, "-m", "eventvault", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode in (1, 2)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url, code", [
    ("postgresql://u:s3cr3t@host:notaport/db", 2),  # a port that is not a number
    ("postgresql//u:s3cr3t@host/db", 2),  # no scheme separator: not parsed at all
    ("postgresql+nosuchdriver://u:s3cr3t@127.0.0.1:1/db", 2),
    ("postgresql://u:s3cr3t@127.0.0.1:1/db", 1),  # nothing listens there
])
def test_no_message_shows_a_database_password(cli, url: str, code: int, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["status"], ["snapshot", "-o", "x.evpkg"]):
        result = cli(*args, db=url)
        assert result.code == code, result.err
        assert "s3cr3t" not in one_line(result) + result.out


def test_snapshot_follows_no_planted_link(vault_file: str, cli, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    (tmp_path / "out.evpkg.partial").symlink_to(victim)
    result = cli("snapshot", "-o", str(tmp_path / "out.evpkg"), db=vault_file)
    assert result.code == 0, result.err
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "out.evpkg").stat().st_mode & 0o777 == 0o600
    assert cli("verify", str(tmp_path / "out.evpkg")).code == 0


def test_snapshot_on_a_full_disk_fails_in_one_line_leaving_nothing(
        vault_file: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(os, "fsync", no_space)
    result = cli("snapshot", "-o", str(out / "p.evpkg"), db=vault_file)
    assert result.code == 1
    assert "No space left on device" in one_line(result)
    assert list(out.iterdir()) == []
