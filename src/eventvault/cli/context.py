"""What the commands share: the vault they act on, the actor options, how a write answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from eventvault import output
from eventvault.errors import UsageError
from eventvault.events import parse_time

if TYPE_CHECKING:  # imported where used: `--help` and `--version` never load SQLAlchemy
    from eventvault.domain import Commands
    from eventvault.reader import Reader
    from eventvault.vault import Vault


class Context:
    def __init__(self, db: str | None = None, command: str = "eventvault") -> None:
        self.db = db
        self.command = command  # what a refused attempt is recorded as
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            from eventvault.vault import Vault

            self._vault = Vault(self.db)
        return self._vault

    @contextmanager
    def reading(self) -> Iterator[Reader]:
        """One read transaction on the vault, as a plain DB-API Reader: a SQLite file's
        without SQLAlchemy (reader.py)."""
        from eventvault.vault_read import read_vault

        with read_vault(self.db, lambda: self.vault) as reader:
            yield reader


pass_context = click.make_pass_decorator(Context)


def actor_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = output.options(function)
    function = click.option("--reason", metavar="TEXT", help="Why: stored on the events.")(function)
    return click.option("--as", "actor", metavar="USERNAME", default="system", show_default=True,
                        help="Who does it: recorded as the actor of every event.")(function)


@contextmanager
def writing(context: Context, actor: str, reason: str | None) -> Iterator[Commands]:
    with context.vault.write(actor, reason, command=context.command) as commands:
        yield commands


def written(entity_id: str, commands: Commands) -> None:
    """A write command's answer, once committed: the UUID (--json: with seq and head hash)."""
    head = commands.head
    output.answer(entity_id, {"uuid": entity_id, "seq": head.seq, "head_hash": head.hash.hex()})


def vault_now(context: Context, **more: Any) -> dict[str, Any]:
    """What exists now, for --json: `more`, then the status's counts, head and digest."""
    return {**more, **context.vault.status().as_json()} if output.as_json() else more


def field_values(words: tuple[str, ...], option: str) -> dict[str, str]:
    """FIELD=VALUE words (of --set, --where) as a dict; a word without `=` or a field is a
    usage error naming the option."""
    found: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"{option} expects FIELD=VALUE, got {word!r}")
        found[name.strip()] = value
    return found


def parse_settings(settings: tuple[str, ...]) -> dict[str, str]:
    changes = field_values(settings, "--set")
    if not changes:
        raise UsageError("nothing to change: give at least one --set FIELD=VALUE")
    return changes


def parse_at(at: str | None) -> int | None:
    return None if at is None else parse_time(at)


def one_point(at: str | None, seq: int | None) -> None:
    """--at and --seq name the same thing two ways: one of them, never both."""
    if at is not None and seq is not None:
        raise click.UsageError("give --at or --seq, not both")
