"""Chains of packages in a repository: which packages a package needs to be restored, and
which chain restores a given point (the latest head, a seq, or a time).

A package needs the package it continues (head seq and head hash equal to its base), and that
one's predecessors, back to a full package. Where several could serve (two packages with the
same head), the shorter chain is taken.
"""

from __future__ import annotations

from eventvault.errors import UsageError
from eventvault.events import us_to_iso
from eventvault.repo.repository import PackageInfo


def chains(infos: list[PackageInfo]) -> dict[str, list[PackageInfo] | None]:
    """For each package name, its chain from a full package to it, or None if broken."""
    by_head: dict[tuple[str, int, str], list[PackageInfo]] = {}
    for info in infos:
        by_head.setdefault((info.vault_id, info.head_seq, info.head_hash), []).append(info)
    found: dict[str, list[PackageInfo] | None] = {}

    def chain(info: PackageInfo, seen: frozenset[str]) -> list[PackageInfo] | None:
        if info.name in found:
            return found[info.name]
        if info.full:
            result: list[PackageInfo] | None = [info]
        else:
            options = [chain(base, seen | {info.name})
                       for base in by_head.get((info.vault_id, info.base_seq, info.base_hash), [])
                       if base.name not in seen]
            complete = [option for option in options if option is not None]
            result = [*min(complete, key=len), info] if complete else None
        found[info.name] = result
        return result

    for info in sorted(infos, key=lambda info: info.head_seq):
        chain(info, frozenset())
    return found


def pick(infos: list[PackageInfo], *, until_seq: int | None = None,
         at: int | None = None) -> list[PackageInfo]:
    """The chain that restores the point asked for: its packages, full package first."""
    complete = [chain for chain in chains(infos).values() if chain is not None]
    if not complete:
        raise UsageError("the repository holds no complete chain (a full package and its "
                         "increments) for this vault")
    head = max(chain[-1].head_seq for chain in complete)
    if until_seq is not None:
        if until_seq < 1 or until_seq > head:
            raise UsageError(f"--seq {until_seq} is outside the repository's events (1 to {head})")
        complete = [c for c in complete if c[-1].base_seq < until_seq <= c[-1].head_seq]
    if at is not None:
        first = min((c[0].first_time for c in complete if c[0].first_time is not None),
                    default=None)
        if first is None or at < first:
            raise UsageError(f"{us_to_iso(at)} is before the repository's first event; "
                             "nothing existed yet")
        after = [c for c in complete if c[-1].last_time is not None and c[-1].last_time > at]
        if after:  # the earliest package that goes past `at` holds everything up to it
            low = min(c[-1].head_seq for c in after)
            complete = [c for c in after if c[-1].head_seq == low]
        else:
            complete = [c for c in complete if c[-1].head_seq == head]
    elif until_seq is None:
        complete = [c for c in complete if c[-1].head_seq == head]
    return min(complete, key=lambda c: (len(c), -c[-1].created_at))
