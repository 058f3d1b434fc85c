"""From the phases' raw results to figures: ratios to the floor, targets met or missed, a table.

Every throughput figure is also given as `x floor`: how many times longer than the plain
sqlite3 floor it takes per event (so a whole-log phase's ratio is its seconds over the floor's
seconds). Audit latencies are given against plain sqlite3 reading the same events. The targets
are issue 6's, defined for 1,000,000 events on the 2-core reference machine.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

Raw = dict[str, Any]

TARGETS_AT_EVENTS = 1_000_000
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    op: str  # "<=", "<" or ">="
    bound: float
    on: str  # "value" or "ratio"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        subject = value if self.on == "value" else ratio
        return None if subject is None else _COMPARE[self.op](subject, self.bound)

    def __str__(self) -> str:
        unit = "x floor" if self.on == "ratio" else ""
        return f"{self.op} {self.bound:g}{unit}"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: float | None
    unit: str
    ratio: float | None = None  # x floor (or x plain sqlite3 query, for the audit)
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        return self.target.met(self.value, self.ratio) if self.target else None

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["target"] = str(self.target) if self.target else None
        found["met"] = self.met
        return found


def figures(raw: Raw) -> list[Figure]:
    floor = raw["floor"]
    floor_rate = floor["events"] / floor["seconds"]
    found = [
        Figure("floor", "floor: sqlite3 executemany, events + final rows", floor_rate,
               "events/s", 1.0),
        Figure("floor_seconds", "floor: seconds (indexes built after the rows)",
               floor["seconds"], "s", 1.0),
        Figure("floor_indexed_seconds", "floor variant: indexes kept up row by row",
               floor["indexed_seconds"], "s", floor["indexed_seconds"] / floor["seconds"]),
    ]
    append_rate = floor["events"] / floor["append_seconds"]
    found.append(Figure("append_floor", f"append floor: events alone, {floor['append_batch']} "
                        "a transaction", append_rate, "events/s", floor_rate / append_rate))
    build = raw.get("build")
    if build:
        found += [
            _rate("append_batched", f"append, {build['batch']} commands a transaction",
                  build["batched"], floor_rate, Target(">=", 20_000, "value")),
            _rate("append_single", "append, one command a transaction", build["single"],
                  floor_rate),
        ]
        batched = build["batched"]
        found += _against_own_floor(
            "append_batched", "append, batched, against the append floor",
            floor["append_seconds"] / floor["events"], batched["seconds"] / batched["events"],
            floor.get("append_cpu_seconds", 0.0) / floor["events"],
            batched.get("cpu_seconds", 0.0) / batched["events"], Target(">=", 0.8, "value"))
    snapshot = raw["snapshot"]
    snapshot_floor = raw["snapshot_floor"]
    found += _against_own_floor(
        "snapshot", "snapshot against the snapshot floor",
        snapshot_floor["seconds"], snapshot["seconds"],
        snapshot_floor.get("cpu_seconds", 0.0), snapshot.get("cpu_seconds", 0.0),
        Target(">=", 0.9, "value"))
    found += [
        _rate("snapshot", "snapshot", snapshot, floor_rate, Target(">=", 300_000, "value")),
        _rate("snapshot_floor", "snapshot floor: read records, chain, compress"
              if raw["snapshot_floor"].get("stored_records") else
              "snapshot floor: read, re-encode, chain, compress", raw["snapshot_floor"],
              floor_rate),
        Figure("snapshot_bytes_per_event", "snapshot: package bytes per event",
               snapshot["bytes"] / snapshot["events"], "B/event",
               target=Target("<=", 40, "value")),
        Figure("snapshot_package_mb", "snapshot: package size", snapshot["bytes"] / 1e6, "MB"),
        Figure("snapshot_rss", "snapshot: peak RSS", snapshot["rss_peak_mb"], "MB"),
    ]
    for engine, replay in (("sqlite", raw["replay_sqlite"]),
                           ("postgresql", raw.get("replay_postgresql"))):
        if replay is None:
            continue
        sqlite = engine == "sqlite"
        found.append(_rate(f"replay_{engine}", f"replay into {engine}, verification included",
                           replay, floor_rate, Target("<=", 1.3, "ratio") if sqlite else None))
        if sqlite and "cpu_seconds" in replay and "cpu_seconds" in floor:  # issue 14
            found += [
                Figure("replay_sqlite_cpu", "replay into sqlite: CPU time (every process)",
                       replay["cpu_seconds"], "s", replay["cpu_seconds"] / floor["cpu_seconds"],
                       Target("<=", 1.6, "ratio")),
                Figure("floor_cpu", "floor: CPU time", floor["cpu_seconds"], "s", 1.0),
                Figure("replay_sqlite_load", "replay into sqlite: load average before",
                       replay["load_before"], ""),
            ]
        found.append(Figure(f"replay_{engine}_rss", f"replay into {engine}: peak RSS",
                            replay["rss_peak_mb"], "MB",
                            target=Target("<", 600, "value") if sqlite else None))
        if sqlite and replay.get("live_entities"):
            found.append(Figure("replay_sqlite_rss_per_entity",
                                "replay into sqlite: peak RSS over start-up, per live entity",
                                (replay["rss_peak_mb"] - replay["rss_baseline_mb"]) * 1000
                                / replay["live_entities"], "KB", target=Target("<=", 0.5,
                                                                               "value")))
    found += [
        _rate("verify_package", "verify a package", raw["verify_package"], floor_rate),
        Figure("verify_package_rss", "verify a package: peak RSS",
               raw["verify_package"]["rss_peak_mb"], "MB"),
        _rate("verify_vault", "verify a vault (chain + projection)", raw["verify_vault"],
              floor_rate),
        Figure("verify_vault_rss", "verify a vault: peak RSS", raw["verify_vault"]["rss_peak_mb"],
               "MB"),
    ]
    audit = raw["audit"]
    for kind, label in (("history", "audit history of an entity"),
                        ("actor", "audit actor, first page"),
                        ("as_of", "audit entity as of a time")):
        figures_of = audit[kind]
        median = figures_of["vault_ms"]["median"]
        found += [
            Figure(f"audit_{kind}", f"{label}: median", median, "ms",
                   median / figures_of["raw_ms"]["median"], Target("<", 50, "value")),
            Figure(f"audit_{kind}_connection",
                   f"{label}: median on an open connection",
                   figures_of["connection_ms"]["median"], "ms",
                   figures_of["connection_ms"]["median"] / figures_of["raw_ms"]["median"]),
        ]
    return found + _command_line(raw.get("commands"))


def _command_line(measured: Raw | None) -> list[Figure]:
    """Issue 14 target 5 and 3: start-up and the answers an operator waits for, each a
    process; `x floor` is against `import click` for --version, against --version otherwise."""
    if not measured:
        return []
    version = measured["version"]["wall"]
    found = [Figure("import_click", "python -c 'import click': median wall",
                    measured["import_click"]["wall"] * 1000, "ms")]
    for key, label, against, bound in (
            ("version", "eventvault --version", measured["import_click"]["wall"], 2),
            ("status_json", "eventvault status --json", version, 2),
            ("audit_history", "eventvault audit history (busiest document)", version, 3)):
        wall, cpu = measured[key]["wall"], measured[key]["cpu"]
        found.append(Figure(f"cli_{key}", f"{label}: median wall (CPU {cpu * 1000:.0f} ms)",
                            wall * 1000, "ms", wall / against, Target("<=", bound, "ratio")))
    return found


def _against_own_floor(key: str, label: str, floor_wall: float, wall: float,
                       floor_cpu: float, cpu: float, target: Target) -> list[Figure]:
    """Speed as a fraction of the phase's own floor (issue 14: 1.0 = as fast as the floor),
    by wall time and by CPU time (user + system: what a loaded machine does not blur)."""
    found = [Figure(f"{key}_of_floor", f"{label}: wall", floor_wall / wall if wall else None,
                    "x speed", target=target)]
    if cpu and floor_cpu:
        found.append(Figure(f"{key}_of_floor_cpu", f"{label}: CPU", floor_cpu / cpu,
                            "x speed", target=target))
    return found


def _rate(key: str, label: str, phase: Raw, floor_rate: float,
          target: Target | None = None) -> Figure:
    rate = phase["events"] / phase["seconds"] if phase["seconds"] else None
    ratio = floor_rate / rate if rate else None
    return Figure(key, label, rate, "events/s", ratio, target)


# --- output ----------------------------------------------------------------------------------

def table(found: list[Figure], events: int) -> str:
    note = "" if events == TARGETS_AT_EVENTS else (
        f"  (targets are defined at {TARGETS_AT_EVENTS:,} events; this run has {events:,})")
    header = ("figure", "value", "unit", "x floor", "target", "")
    rows = [header] + [
        (f.label, _number(f.value), f.unit, "" if f.ratio is None else f"{f.ratio:.2f}",
         str(f.target) if f.target else "",
         {True: "met", False: "MISSED", None: ""}[f.met])
        for f in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    aligned = [
        "  ".join(cell.ljust(w) if i in (0, 2, 4, 5) else cell.rjust(w)
                  for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
        for row in rows
    ]
    aligned.insert(1, "-" * len(aligned[0]))
    return "\n".join(aligned) + ("\n" + note if note else "")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"
