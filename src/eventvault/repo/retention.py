"""`repo forget`: which packages a restic-style policy keeps, closed over what they need.

The policy picks packages by the time they were written (`created_at`): the last N, and the
newest package of each of the last N hours, days, ISO weeks and months that have one. Then every
package a kept one needs to be restored (its base and the increments before it) is kept too,
so forgetting never breaks a chain. Everything else is removed, each with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from eventvault.repo.chains import chains
from eventvault.repo.repository import PackageInfo


@dataclass(frozen=True)
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @property
    def empty(self) -> bool:
        return not (self.last or self.hourly or self.daily or self.weekly or self.monthly)


@dataclass
class Decision:
    info: PackageInfo
    reasons: list[str] = field(default_factory=list)  # why kept; empty: removed

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


BUCKETS = {
    "hourly": lambda t: t.strftime("%Y-%m-%d %H"),
    "daily": lambda t: t.strftime("%Y-%m-%d"),
    "weekly": lambda t: f"{t.isocalendar()[0]}-W{t.isocalendar()[1]:02d}",
    "monthly": lambda t: t.strftime("%Y-%m"),
}


def plan(infos: list[PackageInfo], policy: Policy) -> list[Decision]:
    """One decision per package, newest first. Packages of a broken chain are kept (a check
    must look at them; forgetting them would hide the problem)."""
    newest_first = sorted(infos, key=lambda info: (info.created_at, info.head_seq), reverse=True)
    decisions = {info.name: Decision(info) for info in newest_first}
    for index, info in enumerate(newest_first[: policy.last]):
        decisions[info.name].reasons.append(f"last {index + 1}")
    for kind, bucket_of in BUCKETS.items():
        wanted = getattr(policy, kind)
        seen: list[str] = []
        for info in newest_first:
            if len(seen) >= wanted:
                break
            bucket = bucket_of(datetime.fromtimestamp(info.created_at / 1e6, UTC))
            if bucket not in seen:
                seen.append(bucket)
                decisions[info.name].reasons.append(f"{kind} {bucket}")
    found = chains(infos)
    for info in newest_first:
        chain = found[info.name]
        if chain is None:
            decisions[info.name].reasons.append("its chain is broken (see repo check)")
            continue
        if not decisions[info.name].reasons or any(
                r.startswith("needed by") for r in decisions[info.name].reasons):
            continue
        for needed in chain[:-1]:
            reasons = decisions[needed.name].reasons
            if not any(r.startswith("needed by") for r in reasons):
                reasons.append(f"needed by {info.name[:12]}")
    return [decisions[info.name] for info in newest_first]
