"""Issue 14's command-line figures: how long an operator waits for `eventvault --version`,
`status --json` and `audit history` on the built vault, against `python -c "import click"`.

Each command runs as its own process, as an operator runs it; wall time and the CPU time of
the child (user + system, RUSAGE_CHILDREN) are taken per run, and the median of `runs` is kept.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The console script an operator runs, beside this interpreter (`python -m eventvault` would add
# runpy's start-up to every figure).
_SCRIPT = Path(sys.executable).parent / "eventvault"
EVENTVAULT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "eventvault"]


def measure(source: Path, runs: int = 7) -> dict[str, Any]:
    """Medians (seconds) of wall and CPU time of each command against the vault file."""
    url = f"sqlite:///{source}"
    ref = _busiest_document(source)
    commands = {
        "import_click": [sys.executable, "-c", "import click"],
        "version": [*EVENTVAULT, "--version"],
        "status_json": [*EVENTVAULT, "--db", url, "status", "--json"],
        "audit_history": [*EVENTVAULT, "--db", url, "audit", "history", ref],
    }
    found: dict[str, Any] = {"document": ref, "runs": runs,
                             "load_before": os.getloadavg()[0]}
    for name, argv in commands.items():
        walls, cpus = [], []
        for _ in range(runs):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        found[name] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}
    return found


def _busiest_document(source: Path) -> str:
    """The document with the longest history: the slowest `audit history` the vault has."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as connection:
        row = connection.execute(
            "SELECT entity_id FROM events WHERE entity_type = 'document' "
            "GROUP BY entity_id ORDER BY count(*) DESC LIMIT 1").fetchone()
    if row is None:
        raise RuntimeError(f"{source} holds no document")
    return str(row[0])
