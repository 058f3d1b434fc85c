"""The vault's lifecycle: init, reinit, demo, status, rebuild."""

from __future__ import annotations

import json
import sys

import click

from eventvault import output
from eventvault.cli.context import Context, pass_context, vault_now
from eventvault.errors import UsageError
from eventvault.progress import shown


@click.command()
@click.option("--writer-role", metavar="ROLE",
              help="PostgreSQL login role or MariaDB account (NAME or NAME@HOST): grant it "
                   "what writing and reading need, and no more (the account running init "
                   "stays the owner that migrates).")
@click.option("--schema", "schema_file", metavar="FILE", type=click.Path(dir_okay=False),
              help="The schema of a new vault (docs/SCHEMA.md); default: the story's dms.")
@output.options
@pass_context
def init(context: Context, writer_role: str | None, schema_file: str | None) -> None:
    """Create (or upgrade) the vault schema and the system entities. Idempotent."""
    from eventvault.schemadoc import load

    declared = load(schema_file) if schema_file is not None else None
    created = context.vault.init(writer_role=writer_role, declared=declared)
    lines = [f"vault ready at {context.vault.where} ({created} system entities created)"]
    if writer_role:
        lines.append(f"writer role {writer_role} may read and append; it owns nothing")
    output.report(lines, vault_now(context, created=created, writer_role=writer_role))


@click.command()
@output.options
@click.option("--yes", is_flag=True, help="Confirm: this deletes every event and entity.")
@click.option("--as", "actor", metavar="USERNAME", help="The admin who does it (required).")
@pass_context
def reinit(context: Context, yes: bool, actor: str | None) -> None:
    """Drop everything, the event log included, then init."""
    if not yes:
        if actor is None:  # nothing to ask about yet: the command is incomplete
            raise UsageError("reinit deletes every event and entity; add --yes to confirm")
        confirm_reinit(context)
    if actor is None:
        raise UsageError("reinit needs --as USERNAME naming an admin")
    created = context.vault.reinit(actor, context.command)
    output.report(f"vault reinitialised at {context.vault.where} ({created} system entities)",
                  vault_now(context, created=created))


def confirm_reinit(context: Context) -> None:
    """On a terminal, ask, naming what would be destroyed; elsewhere refuse as always."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("reinit deletes every event and entity; add --yes to confirm")
    from eventvault.errors import NotAVaultError

    try:
        found = context.vault.status()
        held = ", ".join(f"{n} {t}s" for t, n in found.counts.items() if n)
        what = f"{found.head_seq} events and every entity ({held})"
    except NotAVaultError:
        what = "whatever it holds (it is not a vault at this schema)"
    if not click.confirm(f"reinit deletes {what} of {context.vault.where}. Go on?",
                         err=True):
        raise UsageError("reinit not confirmed; nothing was changed")


@click.command()
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Make N times as many users, documents and workflows.")
@output.options
@pass_context
def demo(context: Context, scale: int) -> None:
    """Fill a freshly initialised vault with the story's data."""
    from eventvault.demo import run_demo

    with shown("demo", "stories", quiet=output.quiet()) as progress:
        counts = run_demo(context.vault, scale, progress=progress)
    output.report(" ".join(f"{name}={count}" for name, count in counts.items()),
                  vault_now(context))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for tools.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Head of the chain, state digest and entity counts."""
    from eventvault.status import read_status

    with context.reading() as reader:
        found = read_status(reader)
    if as_json:
        click.echo(json.dumps(found.as_json()))
        return
    click.echo(f"vault           {found.url}")
    click.echo(f"vault id        {found.vault_id}")
    click.echo(f"head seq        {found.head_seq}")
    click.echo(f"head hash       {found.head_hash}")
    click.echo(f"state digest    {found.state_digest}")
    for name, count in found.counts.items():
        click.echo(f"{name:<16}{count}")


@click.command()
@click.option("--as", "actor", metavar="USERNAME", required=True,
              help="The admin who rebuilds (required: no default).")
@output.options
@pass_context
def rebuild(context: Context, actor: str) -> None:
    """Rebuild the projection tables from the log (admin only): the repair for drift."""
    result = context.vault.rebuild(actor, context.command)
    output.report(
        [f"rebuilt the tables from the log to seq {result.head_seq} and verified them "
         f"({result.differences} differences repaired)",
         f"state digest  {result.state_digest}"],
        {"head_seq": result.head_seq, "state_digest": result.state_digest,
         "counts": result.counts, "differences": result.differences})
