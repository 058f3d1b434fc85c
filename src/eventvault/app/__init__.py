"""Protecting an existing application's database (issue 13; DESIGN.md "Protecting an existing
application"): reflect its tables into a vault schema (`reflect`), name its rows by UUID
(`identity`), capture its state and the changes since the last capture (`capture`, `state`),
and restore a state into a re-migrated database with every reference remapped (`restore`).

Modules: `mapping` (tables <-> types), `columns` (column types <-> kinds), `reflect`,
`identity`, `connect` (consistent read, one write transaction), `capture`, `state` (state,
digest, changes), `restore`, `evolution` (re-attaching after the application migrated).
"""

from __future__ import annotations

from eventvault.app.capture import capture, read_state
from eventvault.app.connect import app_engine
from eventvault.app.evolution import reattach
from eventvault.app.identity import IdentityMap, natural_uuid
from eventvault.app.mapping import AppField, AppMapping, AppReference, AppTable
from eventvault.app.reflect import reflect
from eventvault.app.restore import RestoreReport, restore
from eventvault.app.state import Change, State, apply, counts, diff, digest

__all__ = [
    "AppField",
    "AppMapping",
    "AppReference",
    "AppTable",
    "Change",
    "IdentityMap",
    "RestoreReport",
    "State",
    "app_engine",
    "apply",
    "capture",
    "counts",
    "diff",
    "digest",
    "natural_uuid",
    "read_state",
    "reattach",
    "reflect",
    "restore",
]
