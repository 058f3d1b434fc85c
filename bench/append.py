"""Issue 14's target 6 alone: the batched append against its floor, repeated, A/B-ready.

    python bench/append.py --events 100000 --repeat 3
    PYTHONPATH=/path/to/other/tree/src python bench/append.py ...   # the other side

Each repetition builds a fresh SQLite vault through the domain API (`workload.measure`,
`--batch` commands a transaction; the vault.write() blocks timed) and then the append floor
on the events it wrote (`floor.measure_append`: plain sqlite3, `--batch` a transaction), in
this one process. One JSON line per repetition: each side's CPU (user + system) and wall
seconds and events/s, the ratios append / floor by CPU and by wall (issue 14's form: 1.0 =
as fast as the floor), and the load average before and after. On a shared machine compare
the CPU ratios of several repetitions, both sides alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import floor
import workload

import eventvault


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="commands a transaction")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=6)
    options = parser.parse_args(argv)
    for _ in range(options.repeat):
        print(json.dumps(measure(options.events, options.batch, options.seed)), flush=True)
    return 0


def measure(events: int, batch: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="eventvault-append-") as work:
        vault = Path(work) / "vault.db"
        load_before = os.getloadavg()[0]
        os.sync()
        built = workload.measure(f"sqlite:///{vault}", events, batch, seed)
        floor_run = floor.measure_append(str(vault), str(Path(work) / "floor.db"), batch)
    # Compared as events/s: the floor also writes the init's few system events.
    append_cpu, append_wall = _rates(built)
    floor_cpu, floor_wall = _rates(floor_run)
    return {
        "library": str(Path(eventvault.__file__).parent), "events": built["events"],
        "batch": batch, "append": built, "floor": floor_run,
        "append_events_per_second": round(append_wall),
        "floor_events_per_second": round(floor_wall),
        "ratio_cpu": round(append_cpu / floor_cpu, 3),
        "ratio_wall": round(append_wall / floor_wall, 3),
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }


def _rates(run: dict[str, Any]) -> tuple[float, float]:
    """Events per CPU second and per wall second."""
    return run["events"] / run["cpu_seconds"], run["events"] / run["seconds"]


if __name__ == "__main__":
    sys.exit(main())
