"""What the figures were measured on: machine, interpreter, engines, libraries, source revision."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def describe(postgresql: str | None, source_at_start: dict[str, str | None]) -> dict[str, Any]:
    """The machine now, and the source revision at the start and at the end of the run (other
    people may commit meanwhile: each child process runs the code on disk when it starts)."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "memory_gib": round(_mem_total_kib() / 1024**2, 1),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgresql,
        "packages": {name: _version(name) for name in
                     ("SQLAlchemy", "msgpack", "zstandard", "psycopg", "alembic")},
        "source_at_start": source_at_start,
        "source_at_end": source_revision(),
    }


def source_revision() -> dict[str, str | None]:
    """The commit checked out, and the uncommitted changes to the library, if any."""
    return {"commit": _git("rev-parse", "--short", "HEAD"),
            "changes": _git("status", "--porcelain", "--", "src", "migrations")}


def _mem_total_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*words: str) -> str | None:
    """Read-only git queries: which commit, and whether the working tree differs from it."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *words], capture_output=True, text=True,
                              check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()
