"""Package format versions 1 and 2: a package holding a record with the principal (11
elements) declares version 2, so a 0.1 reader says "upgrade eventvault" instead of calling
it malformed; one of 10-element records only stays version 1, which 0.1 reads. This code
reads both (the 0.1.0 fixtures keep restoring: tests/test_fixtures_v010.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from test_fixtures_v010 import HEAD_SEQ, fixture

REPOSITORY = Path(__file__).resolve().parent.parent
RELEASE_0_1_0 = "28ae138"


def declared(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:20], "little")


def ok(*args: str, db: str | None = None) -> str:
    result = run_cli(*args, db=db)
    assert result.code == 0, result.err
    return result.out


def test_principals_declare_version_2_and_old_records_version_1(tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    ok("init", db=fresh)
    ok("demo", db=fresh)
    new = tmp_path / "new.evpkg"
    ok("snapshot", "-o", str(new), db=fresh)
    assert declared(new) == 2
    assert json.loads(ok("verify", str(new), "--json"))["ok"]
    ok("replay", str(new), db=f"sqlite:///{tmp_path / 'copy.db'}")

    # A vault restored from 0.1.0's backup: its first HEAD_SEQ events have no principal.
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    ok("replay", fixture("full.evpkg"), db=restored)
    old = tmp_path / "old.evpkg"
    ok("snapshot", "-o", str(old), "--seq", str(HEAD_SEQ), db=restored)
    assert declared(old) == 1  # what 0.1 still reads
    later = tmp_path / "later.evpkg"  # an increment holding the restore's own events
    ok("snapshot", "-o", str(later), "--since", str(old), db=restored)
    assert declared(later) == 2
    checked = json.loads(ok("verify", str(old), str(later), "--json"))
    assert checked["ok"] and checked["head_hash"] == json.loads(
        ok("status", "--json", db=restored))["head_hash"]


def release_0_1_0(tmp_path: Path) -> Path:
    """The source tree of eventvault 0.1.0, from this repository's history."""
    target = tmp_path / "v0.1.0"
    target.mkdir()
    try:
        archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", RELEASE_0_1_0, "src"],
                                 capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"the history holding {RELEASE_0_1_0} (eventvault 0.1.0) is not here")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def test_a_0_1_0_reader_says_upgrade(tmp_path: Path) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    ok("init", db=fresh)
    new = tmp_path / "new.evpkg"
    ok("snapshot", "-o", str(new), db=fresh)
    old_code = release_0_1_0(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from eventvault.package import PackageReader\n"
         "try:\n    PackageReader(sys.argv[1])\nexcept Exception as e:\n    print(e)",
         str(new)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(old_code)},
        cwd=tmp_path)
    assert "unsupported format version 2 (newer than this eventvault supports: upgrade " \
           "eventvault)" in result.stdout, result.stdout + result.stderr
    assert "malformed" not in result.stdout
