"""EventVault benchmark: build a realistic vault, then time what a restore depends on.

    python bench/run.py --events 1000000     # the issue-6 figures (build takes a while)
    python bench/run.py --events 20000       # a quick check

One run: build a vault through the domain API (append figures), measure the plain sqlite3
floor, snapshot, verify the package and the vault, replay into a fresh SQLite file and a fresh
PostgreSQL database, time the audit queries; every measured phase but the build runs in its
own child process (peak RSS per phase). Results go to bench/results-<events>-<time>.json and a
table on stdout. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import child
import commands
import machine
import postgres
import report
import workload

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    source_at_start = machine.source_revision()
    work = Path(options.workdir or tempfile.mkdtemp(prefix="eventvault-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw = _measure(options, work)
    finally:
        if not options.keep and not options.workdir:
            shutil.rmtree(work, ignore_errors=True)
    found = report.figures(raw)
    pg_version = postgres.server_version() if "replay_postgresql" in raw else None
    events = raw["snapshot"]["events"]
    document = {
        "events": events,
        "options": {k: v for k, v in vars(options).items() if k != "output"},
        "machine": machine.describe(pg_version, source_at_start),
        "targets_at_events": report.TARGETS_AT_EVENTS,
        "figures": [f.as_json() for f in found],
        "raw": raw,
    }
    output = Path(options.output or HERE / f"results-{events}-{time.strftime('%Y%m%dT%H%M%S')}"
                  ".json")
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(report.table(found, events))
    print(f"\nresults: {output}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000,
                        help="events in the built vault (default 20000)")
    parser.add_argument("--batch", type=int, default=1000,
                        help="commands per transaction for the batched append (default 1000)")
    parser.add_argument("--single", type=int, default=None,
                        help="commands appended one per transaction "
                             "(default events/100, at least 100, at most 2000)")
    parser.add_argument("--mix", choices=sorted(workload.MIXES), default="history",
                        help="history: the realistic mix (default); live: nearly every event "
                             "creates an entity (~1 live entity an event: the replay's memory)")
    parser.add_argument("--seed", type=int, default=6, help="workload and picks seed")
    parser.add_argument("--picks", type=int, default=50, help="audit queries per kind")
    parser.add_argument("--vault", metavar="PATH",
                        help="use this built vault file instead of building one "
                             "(no append figures); it is read, never changed")
    parser.add_argument("--no-postgres", action="store_true",
                        help="skip the replay into PostgreSQL")
    parser.add_argument("--workdir", metavar="DIR",
                        help="keep the vault, package and targets here (default: a temporary "
                             "directory, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--output", metavar="FILE", help="results JSON (default bench/results-*)")
    options = parser.parse_args(argv)
    if options.single is None:
        options.single = min(2000, max(100, options.events // 100))
    return options


def _measure(options: argparse.Namespace, work: Path) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    source = Path(options.vault) if options.vault else work / "source.db"
    url = f"sqlite:///{source}"
    if options.vault:
        _say(f"using the built vault {source}")
    else:
        _say(f"building a vault of {options.events:,} events through the domain API in {work}")
        load_before = os.getloadavg()[0]
        built = workload.build(url, options.events, batch=options.batch, single=options.single,
                               seed=options.seed, progress=_Progress(options.events),
                               mix=options.mix)
        raw["build"] = {
            "events": built.events, "batch": built.batch, "drawn": vars(built.drawn),
            "batched": vars(built.batched), "single": vars(built.single),
            "source_bytes": source.stat().st_size,
            "load_before": load_before, "load_after": os.getloadavg()[0],
        }
        _say(f"built: {built.batched.events_per_second:,.0f} events/s batched, "
             f"{built.single.events_per_second:,.0f} one at a time")
    package = work / "source.evpkg"
    package.unlink(missing_ok=True)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("floor", "floor", {"source": str(source), "target": str(work / "floor.db"),
                            "batch": options.batch}),
        ("snapshot_floor", "snapshot_floor", {"source": str(source)}),
        ("snapshot", "snapshot", {"url": url, "package": str(package)}),
        ("verify_package", "verify_package", {"package": str(package)}),
        ("verify_vault", "verify_vault", {"url": url}),
        ("replay_sqlite", "replay", {"url": f"sqlite:///{work / 'replayed.db'}",
                                     "package": str(package)}),
    ]
    for key, phase, arguments in steps:
        _clean_sqlite(work / "replayed.db")
        raw[key] = _phase(phase, arguments)
    _clean_sqlite(work / "replayed.db")
    if not options.no_postgres:
        if postgres.available():
            with postgres.scratch_database() as pg_url:
                raw["replay_postgresql"] = _phase("replay", {"url": pg_url,
                                                             "package": str(package)})
        else:
            _say(f"PostgreSQL at {postgres.SERVER} is not available: no replay into it")
    raw["audit"] = _phase("audit", {"url": url, "path": str(source), "picks": options.picks,
                                    "seed": options.seed})
    _say("command line ...")
    raw["commands"] = commands.measure(source)
    for key in ("replay_sqlite", "replay_postgresql"):
        if key in raw and raw[key]["state_digest"] != raw["snapshot"]["state_digest"]:
            raise RuntimeError(f"{key}: the replayed state digest differs from the package's")
    return raw


def _phase(phase: str, arguments: dict[str, Any]) -> dict[str, Any]:
    _say(f"{phase} ...")
    # Each phase starts with the previous one's written pages on the disk: otherwise their
    # writeback lands in the next phase's time (measured: replays of 23.6 s and 32.3 s in a
    # row without it; within 10 % of each other with it).
    os.sync()
    result = child.run(phase, **arguments)
    if "seconds" in result:
        _say(f"{phase}: {result['seconds']:.2f} s, peak RSS {result['rss_peak_mb']:.0f} MB")
    return result


def _clean_sqlite(path: Path) -> None:
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


class _Progress:
    """Build progress on stderr, every 5% of the events."""

    def __init__(self, total: int) -> None:
        self.total, self.next_report, self.started = total, total // 20, time.monotonic()

    def __call__(self, done: int) -> None:
        if done >= self.next_report:
            elapsed = time.monotonic() - self.started
            _say(f"  {done:,} events ({done / self.total:.0%}), {elapsed:.0f} s, "
                 f"{done / elapsed:,.0f} events/s")
            self.next_report = done + self.total // 20


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
