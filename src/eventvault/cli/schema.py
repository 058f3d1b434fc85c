"""The `eventvault schema` commands: show the vault's schema, apply a new version of it."""

from __future__ import annotations

import click

from eventvault.cli.context import Context
from eventvault.schemadoc import load, schema_hash, to_json, to_toml


@click.group("schema")
def schema_group() -> None:
    """The vault's schema: its entity types and fields (docs/SCHEMA.md)."""


@schema_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="The declaration as JSON, for tools.")
@click.pass_obj
def show(context: Context, as_json: bool) -> None:
    """Print the schema the vault's log declares, as a schema file (or JSON)."""
    found = context.vault.schema()
    if as_json:
        click.echo(to_json(found))
    else:
        click.echo(f"# schema hash {schema_hash(found)}")
        click.echo(to_toml(found), nl=False)


@schema_group.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--as", "actor", metavar="USERNAME", required=True,
              help="The admin who changes the schema (required: no default).")
@click.option("--reason", metavar="TEXT", help="Why: stored on the schema event.")
@click.pass_obj
def apply(context: Context, file: str, actor: str, reason: str | None) -> None:
    """Move the vault to the schema in FILE (same name, higher version), recorded in the log;
    refused, with the reason, when existing data would become invalid."""
    new = load(file)
    change = context.vault.apply_schema(new, actor, reason, context.command)
    if change.empty:
        click.echo(f"schema {new.name} version {new.version}: nothing to change")
        return
    click.echo(f"schema {new.name}: version {change.old_version} -> {change.new_version}")
    for note in change.notes:
        click.echo(f"  {note}")
