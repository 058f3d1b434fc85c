"""The command line: parse, call the library, print. Errors become one line and an exit code."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eventvault import output
from eventvault.errors import EventVaultError, IntegrityError, UsageError
from eventvault.events import parse_time
from eventvault.progress import shown
from eventvault.render import for_terminal
from eventvault.values import storable_error

if TYPE_CHECKING:  # imported where used: `--help` and `--version` never load SQLAlchemy
    from eventvault.domain import Commands
    from eventvault.vault import Vault

EXIT_CODES = """Exit codes: 0 success; 1 a check failed (integrity, digest, dangling
reference, conflict, permission, verification); 2 a usage error (bad option, value or
reference); 130 interrupted. Every error is one line on stderr; with --json also
{"error": ..., "exit_code": n} on stdout."""


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


pass_context = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.option("--db", metavar="URL", envvar="EVENTVAULT_DB",
              help="Vault database URL [env EVENTVAULT_DB; default sqlite:///eventvault.db].")
@click.version_option(package_name="eventvault")
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


def parse_settings(settings: tuple[str, ...]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for setting in settings:
        name, equals, value = setting.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--set expects FIELD=VALUE, got {setting!r}")
        changes[name.strip()] = value
    if not changes:
        raise UsageError("nothing to change: give at least one --set FIELD=VALUE")
    return changes


# --- lifecycle ---------------------------------------------------------------------------

@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for tools.")
@pass_context
def status(context: Context, as_json: bool) -> None:
    """Head of the chain, state digest and entity counts."""
    found = context.vault.status()
    if as_json:
        click.echo(json.dumps(found.as_json()))
        return
    click.echo(f"vault           {context.vault.where}")
    click.echo(f"vault id        {found.vault_id}")
    click.echo(f"head seq        {found.head_seq}")
    click.echo(f"head hash       {found.head_hash}")
    click.echo(f"state digest    {found.state_digest}")
    for name, count in found.counts.items():
        click.echo(f"{name:<16}{count}")


@cli.command()
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


@cli.command("list")
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

    where: dict[str, str] = {}
    for condition in conditions:
        name, equals, value = condition.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--where expects FIELD=VALUE, got {condition!r}")
        where[name.strip()] = value
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


# --- write commands ----------------------------------------------------------------------

@cli.group()
def user() -> None:
    """Create, change and delete users."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "author", "reviewer", "viewer"]),
              default="viewer", show_default=True)
@click.option("--email", default="")
@actor_options
@pass_context
def user_add(context: Context, username: str, role: str, email: str, actor: str,
             reason: str | None) -> None:
    """Add a user; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.add_user(username, role, email)
    written(entity_id, commands)


@user.command("update")
@click.argument("ref")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE")
@actor_options
@pass_context
def user_update(context: Context, ref: str, settings: tuple[str, ...], actor: str,
                reason: str | None) -> None:
    """Change fields of a user (REF: username, UUID or user:USERNAME)."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.update_user(ref, parse_settings(settings))
    written(entity_id, commands)


@user.command("delete")
@click.argument("ref")
@actor_options
@pass_context
def user_delete(context: Context, ref: str, actor: str, reason: str | None) -> None:
    """Delete a user nothing refers to any more."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.delete_user(ref)
    written(entity_id, commands)


@cli.group()
def document() -> None:
    """Create, change and delete documents."""


@document.command("add")
@click.argument("title")
@click.option("--author", required=True, metavar="USERNAME")
@click.option("--reviewer", metavar="USERNAME")
@actor_options
@pass_context
def document_add(context: Context, title: str, author: str, reviewer: str | None, actor: str,
                 reason: str | None) -> None:
    """Add a document; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.add_document(title, author, reviewer)
    written(entity_id, commands)


@document.command("update")
@click.argument("ref")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="title, status, author or reviewer (a username); repeatable.")
@click.option("--expect-version", type=int, help="Refuse if the document is not at this version.")
@actor_options
@pass_context
def document_update(context: Context, ref: str, settings: tuple[str, ...],
                    expect_version: int | None, actor: str, reason: str | None) -> None:
    """Change fields of a document (REF: its UUID)."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.update_document(ref, parse_settings(settings), expect_version)
    written(entity_id, commands)


@document.command("delete")
@click.argument("ref")
@actor_options
@pass_context
def document_delete(context: Context, ref: str, actor: str, reason: str | None) -> None:
    """Delete a document no workflow refers to."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.delete_document(ref)
    written(entity_id, commands)


@cli.group()
def workflow() -> None:
    """Start workflows and move them between states."""


@workflow.command("start")
@click.argument("document_ref")
@click.option("--assignee", metavar="USERNAME")
@actor_options
@pass_context
def workflow_start(context: Context, document_ref: str, assignee: str | None, actor: str,
                   reason: str | None) -> None:
    """Start a workflow for a document, in the initial state; prints its UUID."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.start_workflow(document_ref, assignee)
    written(entity_id, commands)


@workflow.command("move")
@click.argument("ref")
@click.argument("state")
@click.option("--expect-version", type=int, help="Refuse if the workflow is not at this version.")
@actor_options
@pass_context
def workflow_move(context: Context, ref: str, state: str, expect_version: int | None, actor: str,
                  reason: str | None) -> None:
    """Move a workflow to STATE along an allowed transition."""
    with writing(context, actor, reason) as commands:
        entity_id = commands.move_workflow(ref, state, expect_version)
    written(entity_id, commands)


# --- backup and restore ------------------------------------------------------------------

def point_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--seq", "until_seq", type=int, metavar="N",
                            help="Stop right after the event with this seq.")(function)
    return click.option("--at", metavar="TIME",
                        help="Stop at this moment (ISO-8601; without a zone it is UTC).")(function)


def parse_at(at: str | None) -> int | None:
    return None if at is None else parse_time(at)


def one_point(at: str | None, seq: int | None) -> None:
    """--at and --seq name the same thing two ways: one of them, never both."""
    if at is not None and seq is not None:
        raise click.UsageError("give --at or --seq, not both")


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="The package file to write (a path or s3://bucket/key).")
@click.option("--since", type=click.Path(dir_okay=False), metavar="BASE.evpkg",
              help="Write an incremental package continuing BASE's head.")
@click.option("--repo", metavar="LOCATION",
              help="Write into this repository (a directory or s3://bucket/prefix), "
                   "incremental on its latest package of this vault.")
@click.option("--full", is_flag=True, help="With --repo: a full package, not an increment.")
@click.option("--encrypt", is_flag=True,
              help="With -o: encrypt the package (passphrase: env EVENTVAULT_PASSPHRASE).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Read the passphrase from FILE's first line.")
@point_options
@output.options
@pass_context
def snapshot(context: Context, output: str | None, since: str | None, repo: str | None,
             full: bool, encrypt: bool, passphrase_file: str | None, at: str | None,
             until_seq: int | None) -> None:
    """Write the log (or its part up to --at/--seq) as a verifiable package."""
    from eventvault import output as reporting  # `output` is the package file here
    from eventvault.snapshot import snapshot as write_snapshot

    if output is None and repo is None:
        raise UsageError("Missing option '-o' / '--output' (or --repo LOCATION)")
    if output is not None and repo is not None:
        raise UsageError("give -o FILE or --repo LOCATION, not both")
    one_point(at, until_seq)
    if until_seq is not None and until_seq < 1:
        raise click.UsageError(f"--seq {until_seq}: a package holds at least event 1")
    if repo is not None or encrypt or output.startswith("s3://"):  # type: ignore[union-attr]
        from eventvault.repo_cli import snapshot_elsewhere

        snapshot_elsewhere(context.vault, output, repo, full=full, encrypt=encrypt,
                           passphrase_file=passphrase_file, since=since,
                           until_seq=until_seq, at=parse_at(at))
        return
    if full:
        raise UsageError("--full goes with --repo")
    with shown("snapshot", "events", quiet=reporting.quiet()) as progress:
        result = write_snapshot(context.vault, output, since=since,  # type: ignore[arg-type]
                                until_seq=until_seq, at=parse_at(at), progress=progress)
    footer = result.footer
    first = result.base_seq + 1
    reporting.report(
        [f"wrote {result.path}: {footer.event_count} events (seq {first}-{footer.head_seq}), "
         f"{result.bytes} bytes, {len(footer.frames)} frames",
         f"head hash     {footer.head_hash.hex()}",
         f"state digest  {footer.state_digest}"],
        {"path": str(result.path), "events": footer.event_count, "first_seq": first,
         "last_seq": footer.head_seq, "bytes": result.bytes, "frames": len(footer.frames),
         "head_hash": footer.head_hash.hex(), "state_digest": footer.state_digest,
         "since": since, "warnings": result.warnings})
    for warning in result.warnings:
        click.echo(f"eventvault: warning: {warning}", err=True)


@cli.command()
@click.argument("packages", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--repo", metavar="LOCATION",
              help="Restore from this repository: it picks the packages for the point.")
@click.option("--vault", "vault_id", metavar="ID",
              help="With --repo holding several vaults' packages: which vault.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="For encrypted packages: the passphrase [default: env EVENTVAULT_PASSPHRASE].")
@click.option("--replace", is_flag=True,
              help="Restore over a non-empty vault (a safety snapshot of it is written first).")
@click.option("--safety-snapshot", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where --replace writes the safety snapshot [default: ./eventvault-safety-*].")
@click.option("--dry-run", is_flag=True, help="Do every check, write nothing.")
@point_options
@click.option("--as", "actor", metavar="USERNAME",
              help="Who requests the restore (recorded as a restore_job) [default: system; "
                   "required with --replace, naming an admin].")
@output.options
@pass_context
def replay(context: Context, packages: tuple[str, ...], repo: str | None, vault_id: str | None,
           passphrase_file: str | None, replace: bool, safety_snapshot: str | None,
           dry_run: bool, at: str | None, until_seq: int | None, actor: str | None) -> None:
    """Rebuild the --db vault from PACKAGES (a full package, then its increments in order;
    paths or s3://bucket/key) or from the packages --repo picks for the point."""
    from eventvault.replay import replay as run_replay
    from eventvault.repo_cli import packages_to_replay

    if not packages and not repo:
        raise UsageError("Missing argument 'PACKAGES...' (or --repo LOCATION)")
    if packages and repo:
        raise UsageError("give PACKAGES or --repo LOCATION, not both")
    if replace and actor is None:  # the library refuses it too; say so before any download
        raise UsageError("replay --replace needs --as USERNAME naming an admin")
    one_point(at, until_seq)
    with packages_to_replay(packages, repo, vault_id, passphrase_file, until_seq,
                            parse_at(at)) as local, \
            shown("replay", "events", quiet=output.quiet()) as progress:
        result = run_replay(
            context.vault, local, replace=replace, dry_run=dry_run, actor=actor,
            until_seq=until_seq, at=parse_at(at), safety_path=safety_snapshot,
            progress=progress, command=context.command,
        )
    lines = []
    if result.safety_snapshot:
        lines.append(f"safety snapshot of the replaced vault: {result.safety_snapshot}")
    verb = "dry run: would restore" if result.dry_run else "restored"
    lines.append(f"{verb} {result.events} events to seq {result.head_seq} in "
                 f"{result.seconds:.2f} s, verified against {result.verified_against}")
    lines.append("entities      " + " ".join(f"{t}={n}" for t, n in result.counts.items()))
    lines.append(f"state digest  {result.state_digest}")
    if result.restore_job and not result.dry_run:
        lines.append(f"restore job   {result.restore_job} (requested by {actor or 'system'})")
    restore_job = None if result.dry_run else result.restore_job
    output.report(lines, {
        "events": result.events, "head_seq": result.head_seq, "head_hash": result.head_hash,
        "state_digest": result.state_digest, "counts": result.counts,
        "restore_job": restore_job,
        "safety_snapshot": str(result.safety_snapshot) if result.safety_snapshot else None,
        "seconds": round(result.seconds, 3), "dry_run": result.dry_run,
        "verified_against": result.verified_against})


@cli.command()
@click.argument("packages", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--repo", metavar="LOCATION",
              help="Check the chain of this repository's latest package (of --vault).")
@click.option("--vault", "vault_id", metavar="ID",
              help="With --repo holding several vaults' packages: which vault.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="For encrypted packages: the passphrase [default: env EVENTVAULT_PASSPHRASE].")
@click.option("--expect-head", metavar="HASH",
              help="The head hash you kept elsewhere; the vault's must equal it.")
@click.option("--against", "against", multiple=True, type=click.Path(dir_okay=False),
              metavar="PKG", help="A package kept elsewhere (repeat for a chain): the vault's "
              "log must contain its head.")
@output.options
@pass_context
def verify(context: Context, packages: tuple[str, ...], repo: str | None, vault_id: str | None,
           passphrase_file: str | None, expect_head: str | None,
           against: tuple[str, ...]) -> None:
    """Check PACKAGES (paths or s3://bucket/key, encrypted or not; no database needed), the
    latest chain of --repo, or with neither the --db vault itself."""
    from eventvault.verify import verify_packages, verify_vault

    if (packages or repo) and against:
        raise UsageError("--against checks the --db vault: give it without PACKAGES or --repo")
    if packages and repo:
        raise UsageError("give PACKAGES or --repo LOCATION, not both")
    if packages or repo:
        from eventvault.repo_cli import packages_to_replay

        # The same sources as replay: downloaded and decrypted into a private directory.
        with packages_to_replay(packages, repo, vault_id, passphrase_file, None, None) as local, \
                shown("verify", "events", quiet=output.quiet()) as progress:
            report = verify_packages(local, progress)
        # Findings name the sources, not the temporary copies (removed by now).
        sources = list(packages) or [f"{repo}: {Path(path).name}" for path in local]
        for path, source in zip(local, sources, strict=True):
            report.findings = [f.replace(path, source) for f in report.findings]
        report.checked = ", ".join(packages) if packages else \
            f"{repo} ({', '.join(Path(path).name for path in local)})"
    else:
        with shown("verify", "events", quiet=output.quiet()) as progress:
            report = verify_vault(context.vault, expect_head, against, progress)
    if (packages or repo) and expect_head and report.ok and report.head_hash != expect_head.lower():
        report.findings.append(f"head hash {report.head_hash} is not the expected {expect_head}")
    if output.as_json():  # the report is the one object, failed or not (then exit 1)
        output.emit_json(report.as_json())
    if len(report.findings) == 1:
        raise IntegrityError(f"verification failed: {report.findings[0]}")
    if report.findings:  # a report: one line per finding, then the verdict
        for finding in report.findings:
            click.echo(f"FAIL {finding}", err=True)
        raise IntegrityError(f"verification failed: {len(report.findings)} findings")
    if not output.as_json() and not output.quiet():
        click.echo(f"OK {report.checked}: {report.events} events, chain intact to seq "
                   f"{report.head_seq}, state digest {report.state_digest}")
        click.echo(f"head hash     {report.head_hash}")


@cli.command()
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


# --- entry point -------------------------------------------------------------------------

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
    from eventvault.engine import without_password  # here: --help never loads SQLAlchemy

    # One line, never a database password, and nothing that could steer the terminal,
    # whatever the message was built from (for_terminal escapes line breaks too).
    line = " ".join(without_password(message).split("\n"))
    return output.fail(for_terminal(line), code)


def describe(error: BaseException) -> str:
    from eventvault.engine import describe as describe_error

    return describe_error(error)


def _database_error() -> type[BaseException]:
    """SQLAlchemy's error base, once loaded; before that none can have been raised (the
    `except` clause asks only when an error passes, so this never imports SQLAlchemy)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors.SQLAlchemyError if errors is not None else _NeverRaised


class _NeverRaised(Exception):
    pass

from eventvault.audit_cli import audit  # noqa: E402  (sub-commands live in their own module)

cli.add_command(audit)

from eventvault.repo_cli import repo  # noqa: E402

cli.add_command(repo)

from eventvault.schema_cli import schema_group  # noqa: E402

cli.add_command(schema_group)

from eventvault.entity_cli import entity_group  # noqa: E402

cli.add_command(entity_group)

from eventvault.app_cli import app_group  # noqa: E402

cli.add_command(app_group)
