"""The `eventvault entity` commands: add, update, delete and show entities of any type."""

from __future__ import annotations

import json
from typing import Any

import click

from eventvault.cli.context import Context
from eventvault.schemadoc import kinds


def write_options(function: Any) -> Any:
    function = click.option("--reason", metavar="TEXT", help="Why: stored on the event.")(
        function)
    return click.option("--as", "actor", metavar="USERNAME", default="system",
                        show_default=True, help="Who does it (one of the type's writers).")(
        function)


@click.group("entity")
def entity_group() -> None:
    """Entities of any type the vault's schema declares (`schema show` lists them).

    REF is a UUID or TYPE:KEY (a one-field natural key). Values are written as
    docs/SCHEMA.md's kinds table says; a reference takes a REF of its target.
    """


@entity_group.command("add")
@click.argument("type_name", metavar="TYPE")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE")
@write_options
@click.pass_obj
def add(context: Context, type_name: str, settings: tuple[str, ...], actor: str,
        reason: str | None) -> None:
    """Create an entity; prints its UUID."""
    with context.vault.entities(actor, reason, context.command) as entities:
        click.echo(entities.add(type_name, settings))


@entity_group.command("update")
@click.argument("ref")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE")
@write_options
@click.pass_obj
def update(context: Context, ref: str, settings: tuple[str, ...], actor: str,
           reason: str | None) -> None:
    """Change fields of an entity (only those that really change are recorded)."""
    with context.vault.entities(actor, reason, context.command) as entities:
        click.echo(entities.update(ref, settings))


@entity_group.command("delete")
@click.argument("ref")
@write_options
@click.pass_obj
def delete(context: Context, ref: str, actor: str, reason: str | None) -> None:
    """Delete an entity no other entity refers to."""
    with context.vault.entities(actor, reason, context.command) as entities:
        click.echo(entities.delete(ref))


@entity_group.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for tools.")
@click.pass_obj
def show(context: Context, ref: str, as_json: bool) -> None:
    """An entity's fields as they are now."""
    with context.vault.entities(write=False) as entities:
        spec, row = entities.lookup(ref)
        values = entities.logical_fields(spec, row)
    shown: dict[str, Any] = {}
    for name, value in values.items():
        field = spec.field(name)
        native = as_json and field is not None and field.kind in ("str", "int", "bool", "float")
        if value is None or field is None or native:
            shown[name] = value
        else:
            shown[name] = kinds.render(field.kind, value)
    if as_json:
        click.echo(json.dumps({"type": spec.name, "uuid": row["uuid"],
                               "version": row["version"], "fields": shown},
                              ensure_ascii=False, sort_keys=True))
        return
    click.echo(f"{spec.name} {row['uuid']} (version {row['version']})")
    for name, value in shown.items():
        click.echo(f"  {name:<16} {'-' if value is None else value}")
