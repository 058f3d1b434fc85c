"""Run one measured phase in a fresh interpreter, and report its result and peak memory.

A fresh process per phase keeps the figures honest: the peak RSS is that phase's alone (not the
builder's, nor a forked copy of it), and no phase warms a cache for the next. The child prints
one JSON object as its last line of stdout: the phase's own result plus `rss_baseline_mb`
(after imports, before the work) and `rss_peak_mb` (VmHWM at the end).

    python bench/child.py PHASE '{"argument": ...}'
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

Result = dict[str, Any]


def run(phase: str, **arguments: Any) -> Result:
    """Run `phase` with `arguments` in a child process; its JSON result, or an error."""
    completed = subprocess.run(
        [sys.executable, str(HERE / "child.py"), phase, json.dumps(arguments)],
        capture_output=True, text=True, check=False,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = completed.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"bench phase {phase} failed (exit {completed.returncode}): "
                           + " | ".join(tail))
    result: Result = json.loads(lines[-1])
    return result


def memory_mb(field: str) -> float:
    """A VmRSS/VmHWM line of /proc/self/status, in MB (10^6 bytes)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no {field} in /proc/self/status")


PHASES = {  # phase -> module:function, imported only when run (a phase's RSS is its own)
    "append": "workload:measure",
    "snapshot": "phases:snapshot",
    "replay": "phases:replay",
    "verify_package": "phases:verify_package",
    "verify_vault": "phases:verify_vault",
    "audit": "audit_latency:measure",
    "floor": "floor:measure",
    "snapshot_floor": "floor:measure_snapshot",
}


def _function(phase: str) -> Callable[..., Result]:
    module, name = PHASES[phase].split(":")
    function: Callable[..., Result] = getattr(importlib.import_module(module), name)
    return function


def main(argv: list[str]) -> int:
    phase, arguments = argv[0], json.loads(argv[1])
    function = _function(phase)
    baseline = memory_mb("VmRSS")
    result = function(**arguments)
    result["rss_baseline_mb"] = round(baseline, 1)
    result["rss_peak_mb"] = round(memory_mb("VmHWM"), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
