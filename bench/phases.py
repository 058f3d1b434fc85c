"""The library's bulk operations, each timed once: snapshot, replay, verify of a package or vault.

Each function runs in its own child process (see child.py) and returns plain JSON-able figures.
Times are wall-clock seconds of the library call alone (imports and process start excluded),
so a replay's figure includes everything the replay does: reading and checking the package,
copying the log, building the projection, the final verification and the restore_job event.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Any

from eventvault.replay import replay as replay_packages
from eventvault.snapshot import snapshot as snapshot_vault
from eventvault.vault import Vault
from eventvault.verify import verify_packages
from eventvault.verify import verify_vault as verify_vault_report

Result = dict[str, Any]


def snapshot(url: str, package: str) -> Result:
    vault = Vault(url)
    try:
        cpu_started = _cpu_seconds()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        written = snapshot_vault(vault, package)
        seconds = time.perf_counter() - started
        cpu_seconds = _cpu_seconds() - cpu_started
    finally:
        vault.close()
    events = written.footer.event_count
    # CPU: this process and the helper it may start (the tables' check, table_check.py).
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "load_before": load,
            "events": events, "bytes": written.bytes,
            "frames": len(written.footer.frames), "head_hash": written.footer.head_hash.hex(),
            "state_digest": written.footer.state_digest}


def _cpu_seconds() -> float:
    """User + system time of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def replay(url: str, package: str) -> Result:
    """Also CPU time: user + system of this process and of every process it started and
    waited for (none since the fold helper went; a replay that starts one again counts it)."""
    vault = Vault(url)
    try:
        load_before = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = replay_packages(vault, [package])
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
    finally:
        vault.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "load_before": load_before,
            "load_after": os.getloadavg()[0], "events": result.events,
            "state_digest": result.state_digest, "verified_against": result.verified_against,
            "counts": result.counts, "live_entities": sum(result.counts.values())}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def verify_package(package: str) -> Result:
    started = time.perf_counter()
    report = verify_packages([package])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "events": report.events, "ok": report.ok,
            "findings": report.findings[:5], "bytes": Path(package).stat().st_size}


def verify_vault(url: str) -> Result:
    vault = Vault(url)
    try:
        started = time.perf_counter()
        report = verify_vault_report(vault)
        seconds = time.perf_counter() - started
    finally:
        vault.close()
    return {"seconds": seconds, "events": report.events, "ok": report.ok,
            "findings": report.findings[:5]}
