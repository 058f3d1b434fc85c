"""The project's errors: one base class; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class EventVaultError(Exception):
    """Base of every error EventVault raises on purpose. Exit code 1: a check failed."""

    exit_code = 1


class UsageError(EventVaultError):
    """The request itself is wrong: bad flag value, unknown reference, malformed time."""

    exit_code = 2


class NotAVaultError(EventVaultError):
    """The database holds no vault (or one whose schema is older than this code)."""


class StoreUnavailableError(EventVaultError):
    """The database cannot be reached or opened."""


class ValidationError(EventVaultError):
    """A command was refused before anything was written."""


class PermissionDeniedError(EventVaultError):
    """The actor's role does not allow the command."""


class EntityAbsentError(EventVaultError):
    """The entity asked about did not exist at the asked moment: not yet, or no longer."""


class ConcurrencyError(EventVaultError):
    """Another writer changed the entity first (stale entity_version)."""


class IntegrityError(EventVaultError):
    """The hash chain, a checksum, a digest or a count does not match."""


class DanglingReferenceError(IntegrityError):
    """An event refers to an entity that does not exist at that point."""


class PackageError(IntegrityError):
    """A package is corrupt, truncated, of an unknown format or out of order."""


class SchemaError(UsageError):
    """A schema document, or a change from one schema version to the next, is invalid.

    `problems` holds one self-contained line per problem; the message is those lines, so a
    user fixing a schema file sees every mistake at once rather than one per attempt.
    """

    def __init__(self, problems: list[str] | tuple[str, ...] | str) -> None:
        self.problems = (problems,) if isinstance(problems, str) else tuple(problems)
        super().__init__("\n".join(self.problems))
