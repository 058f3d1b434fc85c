"""docs/backup.sh, the cron script the README shows, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import run_cli

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "backup.sh"
EVENTVAULT = Path(sys.executable).with_name("eventvault")


def run_script(backups: Path, heads: Path, url: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "EVENTVAULT_DB": url, "EVENTVAULT": str(EVENTVAULT)}
    return subprocess.run(["sh", str(SCRIPT), str(backups), str(heads)], env=environment,
                          capture_output=True, text=True, check=False)


def test_the_backup_script_snapshots_verifies_and_keeps_the_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    assert run_cli("init", db=url).code == 0 and run_cli("demo", db=url).code == 0
    backups, heads = tmp_path / "backups", tmp_path / "offsite" / "heads.txt"
    heads.parent.mkdir()
    done = run_script(backups, heads, url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # silent for cron
    [package] = backups.iterdir()
    stamp, name, head = heads.read_text().split()
    assert name == package.name and stamp in name
    assert head == json.loads(run_cli("status", "--json", db=url).out)["head_hash"]
    # What the kept head is for: the package (and the vault) prove themselves against it.
    assert run_cli("verify", str(package), "--expect-head", head).code == 0
    assert run_cli("verify", "--expect-head", head, db=url).code == 0


def test_a_failing_backup_says_so_and_keeps_no_head(tmp_path: Path) -> None:
    heads = tmp_path / "heads.txt"
    done = run_script(tmp_path / "backups", heads, f"sqlite:///{tmp_path / 'none.db'}")
    assert done.returncode != 0 and "no such vault" in done.stderr
    assert not heads.exists()
