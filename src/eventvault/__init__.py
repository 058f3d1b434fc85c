"""EventVault as a library: the entry points the README's "The library" section shows.

    import eventvault
    with eventvault.Vault("sqlite:///vault.db") as vault:
        vault.init()
        with vault.write("admin", reason="why") as commands:
            commands.add_user("ada", role="author")
        eventvault.snapshot(vault, "backup.evpkg")

- `Vault(url)`: a vault on a database (`init`, `write`, `write_retrying`, `status`, `export`);
  `Commands` is what `Vault.write` yields.
- `snapshot`, `replay`, `verify` (and `verify_packages`, `verify_vault`): backups and checks.
- `history`, `actor_events`, `audit_log`, `as_of`: the audit queries (`eventvault.audit` has
  the rest); times are microseconds since the epoch, UTC (`parse_time` reads ISO-8601).
- The errors: `EventVaultError` and its subclasses (errors.py).
- `__version__`: this package's version (pyproject.toml reads it from here: one source).

Importing the package is cheap: everything but the errors is imported on first use (PEP 562),
so `import eventvault` (or `eventvault --help`) does not load SQLAlchemy or alembic.

`snapshot`, `replay` and `verify` are functions here, although modules of the same names
exist: the package keeps the functions when those modules are loaded. Reach a module itself
with `from eventvault.replay import ...` or `importlib.import_module("eventvault.replay")`.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventvault.errors import (
    ConcurrencyError,
    DanglingReferenceError,
    EntityAbsentError,
    EventVaultError,
    IntegrityError,
    NotAVaultError,
    PackageError,
    PermissionDeniedError,
    SchemaError,
    StoreUnavailableError,
    UsageError,
    ValidationError,
)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and readers
    from eventvault import audit
    from eventvault.audit import (
        AuditEvent,
        EntityState,
        History,
        Page,
        actor_events,
        as_of,
        history,
    )
    from eventvault.audit import log as audit_log
    from eventvault.domain import Commands
    from eventvault.events import parse_time
    from eventvault.replay import ReplayResult
    from eventvault.snapshot import SnapshotResult
    from eventvault.status import Status
    from eventvault.vault import Vault
    from eventvault.verify import Report, verify_packages, verify_vault

__version__ = "0.3.0"

Path = str | os.PathLike[str]

# name -> (module, attribute in it; None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Vault": ("eventvault.vault", "Vault"),
    "Status": ("eventvault.status", "Status"),
    "Commands": ("eventvault.domain", "Commands"),
    "SnapshotResult": ("eventvault.snapshot", "SnapshotResult"),
    "ReplayResult": ("eventvault.replay", "ReplayResult"),
    "Report": ("eventvault.verify", "Report"),
    "verify_packages": ("eventvault.verify", "verify_packages"),
    "verify_vault": ("eventvault.verify", "verify_vault"),
    "audit": ("eventvault.audit", None),
    "history": ("eventvault.audit", "history"),
    "actor_events": ("eventvault.audit", "actor_events"),
    "audit_log": ("eventvault.audit", "log"),
    "as_of": ("eventvault.audit", "as_of"),
    "History": ("eventvault.audit", "History"),
    "Page": ("eventvault.audit", "Page"),
    "AuditEvent": ("eventvault.audit", "AuditEvent"),
    "EntityState": ("eventvault.audit", "EntityState"),
    "parse_time": ("eventvault.events", "parse_time"),
}

__all__ = [
    "AuditEvent", "Commands", "ConcurrencyError", "DanglingReferenceError",
    "EntityAbsentError", "EntityState", "EventVaultError", "History", "IntegrityError",
    "NotAVaultError", "PackageError", "Page", "PermissionDeniedError", "ReplayResult", "Report",
    "SchemaError", "SnapshotResult", "Status", "StoreUnavailableError", "UsageError",
    "ValidationError", "Vault",
    "__version__", "actor_events", "as_of", "audit", "audit_log", "history", "parse_time",
    "replay", "snapshot", "verify", "verify_packages", "verify_vault",
]


def __getattr__(name: str) -> Any:
    """Import an entry point on first use, and keep it (PEP 562)."""
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value: Any = module if attribute is None else getattr(module, attribute)
    else:
        raise AttributeError(f"module 'eventvault' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def snapshot(
    vault: Vault, path: Path, *, since: Path | None = None, until_seq: int | None = None,
    at: int | None = None,
) -> SnapshotResult:
    """Write `vault`'s log as a package to `path`, a file that must not exist yet.

    `since`: a package of this vault to continue (an incremental package holding only the
    events after its head). `until_seq` / `at` (µs since the epoch): stop there instead of
    at the head. Raises UsageError for a bad request; the result names the file, its size
    and its footer (`footer.head_seq`, `footer.head_hash`, `footer.state_digest`).
    """
    from eventvault.snapshot import snapshot as write

    return write(vault, path, since=since, until_seq=until_seq, at=at)


def replay(
    target: Vault, packages: Sequence[Path], *, replace: bool = False, dry_run: bool = False,
    actor: str | None = None, until_seq: int | None = None, at: int | None = None,
    safety_path: Path | None = None,
) -> ReplayResult:
    """Rebuild `target` from `packages` (a full package, then its increments in order).

    All or nothing: the events are copied, folded and checked, and the result is compared
    with the packages before anything commits; any failure raises (IntegrityError,
    PackageError, DanglingReferenceError...) and leaves the target as it was. A target that
    holds data is refused unless `replace` (admins only; a safety snapshot is written first,
    to `safety_path` or ./eventvault-safety-*.evpkg). `until_seq` / `at` (µs) restore an
    earlier point. The restore is recorded as a restore_job requested by `actor` (default
    `system`; with `replace` it must be given, naming an admin: a UsageError otherwise), one
    event after the restored head. `dry_run` does every check and writes nothing.
    """
    from eventvault.replay import replay as restore

    return restore(target, packages, replace=replace, dry_run=dry_run, actor=actor,
                   until_seq=until_seq, at=at, safety_path=safety_path)


def verify(source: Vault | Path | Sequence[Path], *, expect_head: str | None = None) -> Report:
    """Check a vault against its own log, or packages without any database.

    `source`: a Vault, or one package path, or a chain of them (a full package, then its
    increments). `expect_head`: the head hash kept elsewhere; a different head is a finding.
    Never raises for what it finds: the Report lists the findings, and `report.ok` is True
    only when there are none.
    """
    from eventvault.vault import Vault
    from eventvault.verify import verify_packages, verify_vault

    if isinstance(source, Vault):
        return verify_vault(source, expect_head)
    paths = [source] if isinstance(source, str | os.PathLike) else list(source)
    report = verify_packages(paths)
    if expect_head and report.ok and report.head_hash != expect_head.lower():
        report.findings.append(f"head hash {report.head_hash} is not the expected {expect_head}")
    return report


_ENTRY_POINTS = frozenset({"snapshot", "replay", "verify"})


class _Package(types.ModuleType):
    """Keeps the entry-point functions when the modules of the same names are imported.

    Loading eventvault.replay makes the import system set the package's `replay` attribute
    to that module; without this, `eventvault.replay` would be a function or a module
    depending on what happened to be imported first.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ENTRY_POINTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
