"""Run one measured phase in a fresh interpreter, and report its result and peak memory.

A fresh process per phase keeps the figures honest: the peak RSS is that phase's alone (not the
builder's, nor a forked copy of it), and no phase warms a cache for the next. The child prints
one JSON object as its last line of stdout: the phase's own result plus `rss_baseline_mb`
(after imports, before the work), `rss_own_peak_mb` (VmHWM at the end), `rss_helpers_peak_mb`
(the largest helper process the phase started, if any) and `rss_peak_mb`: the peak of the
whole process tree's summed RSS, sampled every 20 ms (or the own peak, if that is higher).

    python bench/child.py PHASE '{"argument": ...}'
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import threading
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


class TreeRss:
    """Peak of the summed RSS of this process and all its descendants (a replay's fold
    helper, say), sampled every 20 ms on a thread: VmHWM alone would leave a helper out."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(os.getpid()))


def _tree_rss_mb(pid: int) -> float:
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024 / 1e6
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _tree_rss_mb(int(child))
    except (FileNotFoundError, ProcessLookupError):  # it ended while being sampled
        pass
    return total


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
    with TreeRss() as tree:
        result = function(**arguments)
    result["rss_baseline_mb"] = round(baseline, 1)
    result["rss_own_peak_mb"] = round(memory_mb("VmHWM"), 1)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
    result["rss_helpers_peak_mb"] = round(helpers, 1)
    # The figure: the sampled peak of the process tree, never below the own exact peak.
    result["rss_peak_mb"] = round(max(tree.peak_mb, result["rss_own_peak_mb"]), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
