"""The benchmark still runs against the library as it is now.

The bench is run by hand, so nothing else would notice when a change to the library breaks
it. A tiny run (no timings are judged here) goes through every phase: build through the
domain API, floors, snapshot, verify, replay (whose digest the run compares with the
package's, failing otherwise) and the audit latency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def test_a_small_benchmark_run_completes_and_reports_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--events", "3000", "--single", "100", "--picks", "5",
         "--no-postgres", "--workdir", str(tmp_path / "work"), "--output", str(output)],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())
    raw = results["raw"]
    assert raw["build"]["batched"]["events"] > 2000
    assert raw["snapshot"]["events"] == results["events"] >= 3000
    assert raw["replay_sqlite"]["state_digest"] == raw["snapshot"]["state_digest"]
    measured = {figure["key"] for figure in results["figures"] if figure["value"] is not None}
    assert {"floor", "snapshot", "replay_sqlite", "verify_package", "verify_vault"} <= measured


def test_the_append_alone_reports_both_sides_and_their_ratios() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.parent / "append.py"), "--events", "2000", "--repeat", "2"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(runs) == 2
    for run in runs:
        assert run["append"]["events"] == run["events"] > 1900
        assert run["floor"]["events"] > run["events"]  # the init's system events too
        assert run["ratio_cpu"] > 0 and run["ratio_wall"] > 0
