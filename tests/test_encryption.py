"""Encrypted packages: every byte is authenticated, chunks cannot be moved, and a wrong or
missing passphrase is one line; retention's policy never breaks a chain."""

from __future__ import annotations

import io
import os
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import run_cli

from eventvault import crypto
from eventvault.errors import PackageError
from eventvault.repo.repository import PackageInfo
from eventvault.repo.retention import Policy, plan

KEY = bytes(range(32))
REF = ["repository", "test"]


def seal(plain: Path, target: Path, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    crypto.encrypt_file(plain, out, key, REF)
    target.write_bytes(out.getvalue())
    return out.getvalue()


def unseal(path: Path, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    crypto.decrypt_file(path, out, lambda _ref: key)
    return out.getvalue()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    db = f"sqlite:///{tmp_path / 'v.db'}"
    assert run_cli("init", db=db).code == 0
    assert run_cli("demo", db=db).code == 0
    path = tmp_path / "plain.evpkg"
    assert run_cli("snapshot", "-o", str(path), db=db).code == 0
    return path


def test_every_flipped_byte_of_an_encrypted_package_is_refused(package: Path,
                                                               tmp_path: Path) -> None:
    sealed = seal(package, tmp_path / "sealed")
    assert unseal(tmp_path / "sealed") == package.read_bytes()
    damaged = tmp_path / "damaged"
    for offset in range(len(sealed)):
        data = bytearray(sealed)
        data[offset] ^= 0x01
        damaged.write_bytes(bytes(data))
        with pytest.raises(PackageError):
            unseal(damaged)
    for cut in (len(sealed) - 1, len(sealed) - 17, 30):
        damaged.write_bytes(sealed[:cut])
        with pytest.raises(PackageError):
            unseal(damaged)
    damaged.write_bytes(sealed + b"\0")
    with pytest.raises(PackageError):
        unseal(damaged)
    with pytest.raises(PackageError):
        unseal(tmp_path / "sealed", key=bytes(32))


def chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    length = struct.unpack_from("<I", sealed, 4)[0]
    header, rest, found = sealed[: 8 + length], sealed[8 + length:], []
    while rest:
        size = struct.unpack_from("<I", rest, 4)[0]
        found.append(rest[: 8 + size])
        rest = rest[8 + size:]
    return header, found


def test_chunks_cannot_be_reordered_dropped_or_moved_between_packages(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(crypto.CHUNK_SIZE * 2 + 1000))
    header, mine = chunks(seal(plain, tmp_path / "a"))
    _, theirs = chunks(seal(plain, tmp_path / "b"))  # same content and key, another file id
    assert len(mine) == 3
    for arrangement in ([mine[1], mine[0], mine[2]], [mine[0], mine[1]], [mine[0], mine[2]],
                        [mine[0], theirs[1], mine[2]], [*mine, mine[2]]):
        (tmp_path / "x").write_bytes(header + b"".join(arrangement))
        with pytest.raises(PackageError):
            unseal(tmp_path / "x")
    assert unseal(tmp_path / "a") == plain.read_bytes()


def test_single_encrypted_package_through_the_cli(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'v.db'}"
    assert run_cli("init", db=db).code == 0
    assert run_cli("demo", db=db).code == 0
    sealed = tmp_path / "backup.evpkg"
    monkeypatch.delenv("EVENTVAULT_PASSPHRASE", raising=False)
    refused = run_cli("snapshot", "-o", str(sealed), "--encrypt", db=db)
    assert refused.code == 2 and "needs a passphrase" in refused.err and not sealed.exists()
    passfile = tmp_path / "pass"
    passfile.write_text("s3cret\n")
    assert run_cli("snapshot", "-o", str(sealed), "--encrypt", "--passphrase-file",
                   str(passfile), db=db).code == 0
    assert crypto.is_encrypted(sealed)
    assert b"alice" not in sealed.read_bytes()
    target = f"sqlite:///{tmp_path / 'new.db'}"
    for env, message in ((None, "is encrypted: give its passphrase"),
                         ("wrong", "wrong passphrase")):
        if env:
            monkeypatch.setenv("EVENTVAULT_PASSPHRASE", env)
        result = run_cli("replay", str(sealed), db=target)
        assert result.code == 1 and message in result.err
        assert len(result.err.splitlines()) == 1
    assert not (tmp_path / "new.db").exists()
    monkeypatch.setenv("EVENTVAULT_PASSPHRASE", "s3cret")
    assert run_cli("replay", str(sealed), db=target).code == 0
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x10
    sealed.write_bytes(bytes(data))
    again = f"sqlite:///{tmp_path / 'again.db'}"
    result = run_cli("replay", str(sealed), db=again)
    assert result.code == 1 and "authentication failed" in result.err


def info(name: str, day: int, hour: int, base: int, head: int, full: bool) -> PackageInfo:
    when = int(datetime(2026, 3, day, hour, tzinfo=UTC).timestamp() * 1_000_000)
    return PackageInfo(name=name * 64, vault_id="v", base_seq=0 if full else base,
                       base_hash="00" * 32 if full else f"{base:064x}", head_seq=head,
                       head_hash=f"{head:064x}", first_time=when, last_time=when,
                       event_count=head - base, created_at=when, state_digest="0" * 64, size=1)


def test_retention_keeps_what_kept_packages_need() -> None:
    packages = [info("a", 1, 10, 0, 10, True), info("b", 2, 10, 10, 20, False),
                info("c", 2, 12, 20, 30, False), info("d", 20, 9, 0, 40, True),
                info("e", 20, 10, 40, 50, False)]

    def kept(policy: Policy) -> dict[str, list[str]]:
        return {d.info.name[0]: d.reasons for d in plan(packages, policy) if d.keep}

    assert kept(Policy(last=1)) == {"e": ["last 1"], "d": ["needed by eeeeeeeeeeee"]}
    daily = kept(Policy(daily=2))
    assert sorted(daily) == ["a", "b", "c", "d", "e"]  # c is day 2's newest: needs b and a
    assert daily["a"] == ["needed by cccccccccccc"] and "daily 2026-03-02" in daily["c"]
    assert sorted(kept(Policy(hourly=1, monthly=1))) == ["d", "e"]
    assert sorted(kept(Policy(weekly=2))) == ["a", "b", "c", "d", "e"]
    # An increment whose base is gone is kept, not silently dropped: check reports it.
    broken = plan([p for p in packages if p.name[0] != "a"], Policy(last=1))
    assert {d.info.name[0] for d in broken if d.keep} == {"b", "c", "d", "e"}
