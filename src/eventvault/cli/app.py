"""The `eventvault app` commands: attach an application's database, capture its changes,
restore it into a re-migrated database (docs/APP.md)."""

from __future__ import annotations

import json

import click

from eventvault.cli.context import Context
from eventvault.errors import UsageError
from eventvault.events import parse_time


@click.group("app")
def app_group() -> None:
    """Protect an existing application's database (docs/APP.md)."""


@app_group.command("attach")
@click.argument("app_url")
@click.option("--exclude", "patterns", multiple=True, metavar="PATTERN",
              help="Skip tables matching this glob (repeatable).")
@click.option("--as", "actor", metavar="USERNAME", default="system", show_default=True,
              help="The admin who changes the schema on a re-attach.")
@click.option("--json", "as_json", is_flag=True, help="The decisions as JSON, for tools.")
@click.pass_obj
def attach(context: Context, app_url: str, patterns: tuple[str, ...], actor: str,
           as_json: bool) -> None:
    """Reflect APP_URL's tables into the vault's schema; print what was decided per table."""
    from eventvault.app.vault_link import attach as do_attach

    done = do_attach(context.vault, app_url, patterns, actor)
    decisions = list(done.mapping.decisions)
    if as_json:
        click.echo(json.dumps({"url": done.url, "schema_version": done.version,
                               "exclude": list(done.exclude),
                               "notes": list(done.notes), "tables": decisions},
                              ensure_ascii=False, sort_keys=True))
        return
    click.echo(f"attached {done.url} (schema version {done.version})")
    for decision in decisions:
        rest = {k: v for k, v in decision.items() if k not in ("table", "decision")}
        detail = "; ".join(f"{k} {_shown(v)}" for k, v in rest.items() if v not in ({}, []))
        click.echo(f"  {decision['table']:<28} {decision['decision']:<9} {detail}".rstrip())
    for note in done.notes:
        click.echo(f"  {note}")


@app_group.command("capture")
@click.option("--source", metavar="APP_URL", help="Read this URL (default: the attached one).")
@click.option("--as", "actor", metavar="USERNAME", default="system", show_default=True,
              help="Who records the changes.")
@click.option("--json", "as_json", is_flag=True, help="Counts as JSON, for tools.")
@click.pass_obj
def capture(context: Context, source: str | None, actor: str, as_json: bool) -> None:
    """Append the application's changes since the last capture as events."""
    from eventvault.app.vault_link import capture as do_capture

    changes = do_capture(context.vault, source, actor)
    counted = {action: sum(1 for c in changes if c.action == action)
               for action in ("created", "updated", "deleted")}
    if as_json:
        click.echo(json.dumps({"events": len(changes), **counted}, sort_keys=True))
    elif not changes:
        click.echo("nothing changed: no events appended")
    else:
        click.echo(f"{len(changes)} events appended ({counted['created']} created, "
                   f"{counted['updated']} updated, {counted['deleted']} deleted)")


@app_group.command("restore")
@click.argument("target_url")
@click.option("--seq", "at_seq", type=int, metavar="N", help="The state right after event N.")
@click.option("--at", "at_time", metavar="TIME", help="The state at TIME (ISO 8601).")
@click.option("--dry-run", is_flag=True, help="Do everything and verify, then roll back.")
@click.option("--keep-extra", is_flag=True, help="Keep target rows the backup does not have.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON, for tools.")
@click.pass_obj
def restore(context: Context, target_url: str, at_seq: int | None, at_time: str | None,
            dry_run: bool, keep_extra: bool, as_json: bool) -> None:
    """Write the vault's state of the application into TARGET_URL (one transaction, verified);
    the identity map then points at the target's keys."""
    from eventvault.app.vault_link import restore as do_restore

    if at_seq is not None and at_time is not None:
        raise UsageError("give --seq or --at, not both")
    at = None if at_time is None else parse_time(at_time)
    report = do_restore(context.vault, target_url, at_seq=at_seq, at=at, dry_run=dry_run,
                        keep_extra=keep_extra)
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "inserted": report.inserted,
                               "updated": report.updated, "unchanged": report.unchanged,
                               "kept_extra": report.kept_extra, "counts": report.counts,
                               "rebound": report.rebound, "recreated": report.recreated,
                               "digest": report.digest}, sort_keys=True))
        return
    verb = "would restore" if dry_run else "restored"
    click.echo(f"{verb} {sum(report.counts.values())} rows, verified (digest {report.digest})")
    if report.rebound:
        click.echo(f"  {report.rebound} rows got new keys in the target; the vault recorded them")
    if report.recreated:
        click.echo(f"  {report.recreated} rows deleted since came back; the vault recorded them "
                   "as new entities, each named after the one it follows")
    for name in sorted(report.counts):
        click.echo(f"  {name:<28} {report.counts[name]:>7}  inserted "
                   f"{report.inserted.get(name, 0)}, updated {report.updated.get(name, 0)}")


def _shown(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)
