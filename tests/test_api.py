"""The public API: what `import eventvault` gives, that importing it stays cheap, and that the
README's library script runs exactly as shown."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import eventvault
from eventvault import errors

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "v0.1.0"
ENTRY_POINTS = ("Vault", "snapshot", "replay", "verify", "verify_packages", "verify_vault",
                "history", "actor_events", "audit_log", "as_of")


def python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EVENTVAULT_DB"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_importing_eventvault_loads_no_database_code() -> None:
    # A fresh interpreter: this test process has long imported SQLAlchemy through conftest.
    done = python(
        "import sys, eventvault\n"
        "eventvault.__version__\n"
        "eventvault.IntegrityError\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic'))\n"
        "print(heavy)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_version_comes_from_the_installed_distribution() -> None:
    assert eventvault.__version__ == importlib.metadata.version("eventvault")


def test_every_documented_name_resolves_and_says_what_it_does() -> None:
    for name in eventvault.__all__:
        assert getattr(eventvault, name) is not None, name
    for name in ENTRY_POINTS:
        entry = getattr(eventvault, name)
        assert callable(entry), name
        assert entry.__doc__ and entry.__doc__.strip(), f"{name} has no docstring"
    assert set(eventvault.__all__) <= set(dir(eventvault))
    with pytest.raises(AttributeError):
        _ = eventvault.no_such_thing  # type: ignore[attr-defined]


def test_the_errors_are_the_ones_the_code_raises() -> None:
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.EventVaultError):
            assert getattr(eventvault, name) is value


def test_entry_points_stay_functions_when_their_modules_are_loaded() -> None:
    # eventvault.snapshot/replay/verify are also module names; loading those modules (the CLI
    # does) must not replace the functions, whatever was imported first.
    done = python(
        "import eventvault, inspect\n"
        "first = eventvault.replay\n"
        "import eventvault.cli, eventvault.replay, eventvault.snapshot, eventvault.verify\n"
        "from eventvault.replay import ReplayResult\n"
        "print([inspect.isfunction(getattr(eventvault, n)) for n in "
        "('snapshot', 'replay', 'verify')], eventvault.replay is first)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[True,", "True,", "True]", "True"]


def test_verify_takes_a_vault_a_package_or_a_chain(tmp_path: Path) -> None:
    heads = json.loads((FIXTURES / "heads.json").read_text())
    head = heads["vault"]["head_hash"]
    base, increment = FIXTURES / "base.evpkg", FIXTURES / "incremental.evpkg"
    assert eventvault.verify(FIXTURES / "full.evpkg", expect_head=head).ok
    assert eventvault.verify([str(base), str(increment)], expect_head=head).ok
    wrong = eventvault.verify(str(base), expect_head=head)
    assert not wrong.ok and "is not the expected" in wrong.findings[0]
    assert not eventvault.verify([increment]).ok  # an increment alone is not a backup
    with eventvault.Vault(f"sqlite:///{tmp_path / 'v.db'}") as vault:
        result = eventvault.replay(vault, [base, increment])
        assert result.head_seq == heads["vault"]["head_seq"]
        assert eventvault.verify(vault).ok
        assert not eventvault.verify(vault, expect_head=head).ok  # the restore_job came after
        with pytest.raises(eventvault.ValidationError, match="not empty"):
            eventvault.replay(vault, [base])


def readme_library() -> tuple[str, str]:
    """The script of the README's "The library" section and the output shown after it."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## The library\n(.*?)^## ", text, re.S | re.M)
    assert section, "README.md has no 'The library' section"
    script = re.search(r"```python\n(.*?)```", section.group(1), re.S)
    output = re.search(r"```text\n(.*?)```", section.group(1), re.S)
    assert script and output
    return script.group(1), output.group(1)


def test_the_readme_library_script_runs_as_shown(tmp_path: Path) -> None:
    script, shown = readme_library()
    done = python(script, cwd=tmp_path)  # it writes its vaults and package into the cwd
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
    assert {p.name for p in tmp_path.iterdir()} >= {"library.db", "library.evpkg", "restored.db"}
