"""The vault's state as data: export (now or then) and list (one type, for people)."""

from __future__ import annotations

import json
from typing import Any

import click

from eventvault import output
from eventvault.cli.context import Context, field_values, one_point, parse_at, pass_context
from eventvault.progress import shown


@click.command()
@click.option("--at", metavar="TIME", help="The state as it was then (ISO-8601; UTC if no zone).")
@click.option("--seq", "at_seq", type=int, metavar="N", help="The state right after event N.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@pass_context
def export(context: Context, at: str | None, at_seq: int | None, quiet: bool) -> None:
    """The whole logical state as JSON lines, sorted by type then UUID; no database IDs."""
    one_point(at, at_seq)
    with shown("export", "entities", quiet=quiet) as progress:
        for entity in context.vault.export(at_seq, parse_at(at), progress=progress):
            entity["fields"] = dict(sorted(entity["fields"].items()))
            click.echo(json.dumps(entity, separators=(",", ":")))


@click.command("list")
@click.argument("type_name", metavar="TYPE")
@click.option("--where", "conditions", multiple=True, metavar="FIELD=VALUE",
              help="Only entities whose FIELD is VALUE (a reference: UUID or name); repeatable.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most N entities; 0 for all.")
@output.options
@pass_context
def list_command(context: Context, type_name: str, conditions: tuple[str, ...],
                 limit: int) -> None:
    """The live entities of TYPE: UUID, version, name and fields, references by name."""
    from eventvault.listing import list_entities
    from eventvault.render import Column, table_lines

    where = field_values(conditions, "--where")
    found = list_entities(context.vault, type_name, where, limit)
    if output.as_json():
        output.emit_json(found.as_json())
        return
    if not found.entities:
        click.echo(f"(no {type_name})")
        return

    def shown_value(value: Any) -> str:
        if isinstance(value, dict):  # a reference: its name, else its UUID
            return str(value["name"] if value["name"] is not None else value["uuid"])
        return "" if value is None else str(value)

    names = list(found.entities[0]["fields"])
    columns = [Column("UUID", lambda e: e["uuid"]), Column("VERSION", lambda e: str(e["version"]))]
    columns += [Column(name.upper(), lambda e, n=name: shown_value(e["fields"][n]))
                for name in names]
    for line in table_lines(columns, found.entities):
        click.echo(line)
    if found.more and not output.quiet():
        click.echo(f"eventvault: {limit} shown, more exist; --limit 0 for all", err=True)
