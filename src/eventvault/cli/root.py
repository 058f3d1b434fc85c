"""The `eventvault` group and its entry point: every failure one line and an exit code."""

from __future__ import annotations

import importlib
import logging
import os
import sqlite3
import sys

import click

from eventvault import __version__, output
from eventvault.cli.context import Context
from eventvault.errors import EventVaultError, UsageError
from eventvault.render import for_terminal
from eventvault.values import storable_error

EXIT_CODES = """Exit codes: 0 success; 1 a check failed (integrity, digest, dangling
reference, conflict, permission, verification); 2 a usage error (bad option, value or
reference); 130 interrupted. Every error is one line on stderr; with --json also
{"error": ..., "exit_code": n} on stdout."""

# Each command's module, imported only when that command runs (or `--help` lists them all):
# `eventvault --version` and a single command load no other group's imports.
COMMANDS = {
    "init": "lifecycle:init", "reinit": "lifecycle:reinit", "demo": "lifecycle:demo",
    "status": "lifecycle:status", "rebuild": "lifecycle:rebuild",
    "export": "state:export", "list": "state:list_command",
    "user": "story:user", "document": "story:document", "workflow": "story:workflow",
    "snapshot": "backup:snapshot", "replay": "backup:replay", "verify": "backup:verify",
    "audit": "audit:audit", "repo": "repo:repo", "schema": "schema:schema_group",
    "entity": "entity:entity_group", "app": "app:app_group",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name on first use (click's documented pattern
    for lazily loaded subcommands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module_name, attribute = where.split(":")
        module = importlib.import_module(f"eventvault.cli.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_CODES)
@click.option("--db", metavar="URL", envvar="EVENTVAULT_DB",
              help="Vault database URL [env EVENTVAULT_DB; default sqlite:///eventvault.db].")
@click.version_option(__version__, prog_name="eventvault")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """EventVault: an event-sourced, audit-preserving backup store.

    Every change is an immutable, hash-chained event; `snapshot` writes a verifiable package
    of the log and `replay` rebuilds a vault from it, resolving every reference by UUID.
    """
    if not isinstance(ctx.obj, Context):
        ctx.obj = Context()
    ctx.obj.db = db
    ctx.call_on_close(lambda: ctx.obj._vault.close() if ctx.obj._vault else None)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every failure is one line on stderr and an exit code, never a traceback."""
    words = list(sys.argv[1:] if argv is None else argv)
    # The database layers log a failed rollback on a dead connection with a traceback; with
    # no handler configured Python would print it to stderr beside our one line.
    for name in ("sqlalchemy", "psycopg"):
        if not logging.getLogger(name).handlers:
            logging.getLogger(name).addHandler(logging.NullHandler())
    output.expect_json(words)
    try:
        check_arguments(words)
        cli.main(args=words, prog_name="eventvault", standalone_mode=False,
                 obj=Context(command=command_line(words)))
    except click.exceptions.Abort:
        return fail("aborted", 1)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as error:
        return fail(error.format_message(), 2 if isinstance(error, click.UsageError) else 1)
    except EventVaultError as error:
        return fail(str(error), error.exit_code)
    except _database_error() as error:
        return fail(f"database error: {describe(getattr(error, 'orig', None) or error)}", 1)
    except sqlite3.Error as error:  # from the driver directly (bulk paths bypass SQLAlchemy)
        return fail(f"database error: {describe(error)}", 1)
    except OSError as error:
        return fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 1)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as error:
        if os.environ.get("EVENTVAULT_DEBUG"):
            raise
        if type(error).__module__.startswith("psycopg"):  # the driver's own, like sqlite3's
            return fail(f"database error: {describe(error)}", 1)
        return fail(f"internal error: {type(error).__name__}: {error} "
                    "(set EVENTVAULT_DEBUG=1 for a traceback)", 1)
    return 0


def command_line(words: list[str]) -> str:
    """The command as the audit trail records it: never the database URL (it may hold a
    password, and the log is append-only)."""
    kept: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == "--db":
            skip = True
        elif not word.startswith("--db="):
            kept.append(word)
    return " ".join(["eventvault", *kept])


def check_arguments(words: list[str]) -> None:
    """Refuse arguments no engine can store: invalid UTF-8 arrives as lone surrogates
    (surrogateescape), and would fail deep inside a write, or in a later replay."""
    for number, word in enumerate(words, 1):
        problem = storable_error(word)
        if problem is not None:
            raise UsageError(f"argument {number} {problem}")


def fail(message: str, code: int) -> int:
    from eventvault.db_errors import without_password  # here: --version loads no database code

    # One line, never a database password, and nothing that could steer the terminal,
    # whatever the message was built from (for_terminal escapes line breaks too).
    line = " ".join(without_password(message).split("\n"))
    return output.fail(for_terminal(line), code)


def describe(error: BaseException) -> str:
    from eventvault.db_errors import describe as describe_error

    return describe_error(error)


def _database_error() -> type[BaseException]:
    """SQLAlchemy's error base, once loaded; before that none can have been raised (the
    `except` clause asks only when an error passes, so this never imports SQLAlchemy)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors.SQLAlchemyError if errors is not None else _NeverRaised


class _NeverRaised(Exception):
    pass
