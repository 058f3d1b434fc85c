"""Backup and restore: snapshot, replay, verify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from eventvault import output
from eventvault.cli.context import Context, one_point, parse_at, pass_context
from eventvault.errors import IntegrityError, UsageError
from eventvault.progress import shown


def point_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("--seq", "until_seq", type=int, metavar="N",
                            help="Stop right after the event with this seq.")(function)
    return click.option("--at", metavar="TIME",
                        help="Stop at this moment (ISO-8601; without a zone it is UTC).")(function)


@click.command()
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
    from eventvault.snapshot import snapshot_of

    if output is None and repo is None:
        raise UsageError("Missing option '-o' / '--output' (or --repo LOCATION)")
    if output is not None and repo is not None:
        raise UsageError("give -o FILE or --repo LOCATION, not both")
    one_point(at, until_seq)
    if until_seq is not None and until_seq < 1:
        raise click.UsageError(f"--seq {until_seq}: a package holds at least event 1")
    if repo is not None or encrypt or output.startswith("s3://"):  # type: ignore[union-attr]
        from eventvault.cli.repo import snapshot_elsewhere

        snapshot_elsewhere(context.vault, output, repo, full=full, encrypt=encrypt,
                           passphrase_file=passphrase_file, since=since,
                           until_seq=until_seq, at=parse_at(at))
        return
    if full:
        raise UsageError("--full goes with --repo")
    with shown("snapshot", "events", quiet=reporting.quiet()) as progress:
        result = snapshot_of(context.db, lambda: context.vault, output,  # type: ignore[arg-type]
                             since=since, until_seq=until_seq, at=parse_at(at),
                             progress=progress)
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


@click.command()
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
    from eventvault.cli.repo import packages_to_replay
    from eventvault.replay import replay as run_replay

    if not packages and not repo:
        raise UsageError("Missing argument 'PACKAGES...' (or --repo LOCATION)")
    if packages and repo:
        raise UsageError("give PACKAGES or --repo LOCATION, not both")
    if replace and actor is None:  # the library refuses it too; say so before any download
        raise UsageError("replay --replace needs --as USERNAME naming an admin")
    one_point(at, until_seq)
    with shown("download", "B", quiet=output.quiet()) as download, \
            packages_to_replay(packages, repo, vault_id, passphrase_file, until_seq,
                               parse_at(at), download) as local, \
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


@click.command()
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
        from eventvault.cli.repo import packages_to_replay

        # The same sources as replay: downloaded and decrypted into a private directory.
        with shown("download", "B", quiet=output.quiet()) as download, \
                packages_to_replay(packages, repo, vault_id, passphrase_file, None, None,
                                   download) as local, \
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
