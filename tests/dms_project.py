"""Run the test DMS (tests/django_dms, a real Django project) against a database URL.

Each command is a `python -m django` subprocess, as an operator would run manage.py: Django
configures itself once per process, and the tests use several databases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent / "django_dms"


def django(url: str, *args: str) -> str:
    """Run a Django management command on the database at `url`; its standard output."""
    env = {**os.environ, "DMS_DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "settings",
           "PYTHONPATH": str(PROJECT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-m", "django", *args], env=env, cwd=PROJECT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"django {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def production(url: str) -> None:
    """The production database: migrated, with history, then the story's data."""
    django(url, "migrate", "-v0")
    django(url, "build_story")


def reinit(url: str) -> None:
    """What the seed's operators did after the disaster: migrate a new database, init."""
    django(url, "migrate", "-v0")
    django(url, "init_dms")


def show(url: str) -> dict[str, Any]:
    """The database's content read through Django's ORM (no primary keys)."""
    return json.loads(django(url, "show_story"))  # type: ignore[no-any-return]
