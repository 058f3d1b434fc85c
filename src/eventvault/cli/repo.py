"""`eventvault repo ...`: create a package repository, list, forget, check, manage its keys.

A LOCATION is a directory or s3://bucket/prefix (endpoint and credentials from the standard
AWS_* variables). The passphrase of an encrypted repository comes from EVENTVAULT_PASSPHRASE
or --passphrase-file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from eventvault import crypto, output
from eventvault.errors import IntegrityError, UsageError
from eventvault.events import us_to_iso
from eventvault.progress import Progress, shown

if TYPE_CHECKING:  # imported on use: `eventvault --help` stays quick
    from eventvault.repo.repository import PackageInfo, Repository


def passphrase_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--passphrase-file", type=click.Path(dir_okay=False), metavar="FILE",
                        help="Read the passphrase from FILE's first line "
                             "[default: env EVENTVAULT_PASSPHRASE].")(function)


def open_repository(location: str, passphrase_file: str | None) -> Repository:
    from eventvault.repo.repository import Repository

    return Repository.open(location, crypto.read_passphrase(passphrase_file))


@click.group()
def repo() -> None:
    """Package repositories: a directory or s3://bucket/prefix."""


@repo.command("init")
@click.argument("location")
@click.option("--encrypt", is_flag=True, help="Encrypt every package and its metadata.")
@click.option("--scrypt-log-n", type=click.IntRange(10, 20), default=17, hidden=True,
              help="scrypt cost 2^N of opening the repository (tests use less).")
@passphrase_option
@output.options
def repo_init(location: str, encrypt: bool, scrypt_log_n: int,
              passphrase_file: str | None) -> None:
    """Create an empty repository at LOCATION."""
    from eventvault.repo.repository import Repository

    passphrase = crypto.read_passphrase(passphrase_file) if encrypt else None
    repository = Repository.init(location, encrypt=encrypt, passphrase=passphrase,
                                 scrypt_n=1 << scrypt_log_n)
    kind = "encrypted (AES-256-GCM)" if encrypt else "unencrypted"
    output.report(f"created {kind} repository {repository.id} at {location}",
                  {"location": location, "id": repository.id, "encrypted": encrypt})


def _time(us: int | None) -> str:
    return "-" if us is None else us_to_iso(us)


@repo.command("list")
@click.argument("location")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for tools.")
@passphrase_option
def repo_list(location: str, as_json: bool, passphrase_file: str | None) -> None:
    """The packages: seq range, time range, head hash, size and chain."""
    from eventvault.repo.chains import chains

    repository = open_repository(location, passphrase_file)
    infos = repository.packages()
    found = chains(infos)
    for info in infos:
        chain = found[info.name]
        root = chain[0].name[:12] if chain else None
        if as_json:
            click.echo(json.dumps({**asdict(info), "full": info.full, "chain": root,
                                   "chain_length": len(chain) if chain else None}))
            continue
        kind = "full" if info.full else "incr"
        click.echo(f"{info.name[:12]}  {kind}  seq {info.base_seq + 1}-{info.head_seq}  "
                   f"{_time(info.first_time)} .. {_time(info.last_time)}  "
                   f"head {info.head_hash[:16]}  {info.size} bytes  "
                   f"chain {root or 'BROKEN'}")
    if not as_json:
        click.echo(f"{len(infos)} packages in {location}")


@repo.command("forget")
@click.argument("location")
@click.option("--keep-last", type=click.IntRange(min=0), default=0, metavar="N")
@click.option("--keep-hourly", type=click.IntRange(min=0), default=0, metavar="N")
@click.option("--keep-daily", type=click.IntRange(min=0), default=0, metavar="N")
@click.option("--keep-weekly", type=click.IntRange(min=0), default=0, metavar="N")
@click.option("--keep-monthly", type=click.IntRange(min=0), default=0, metavar="N")
@click.option("--vault", "vault_id", metavar="ID", help="Only this vault's packages.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@passphrase_option
@output.options
def repo_forget(location: str, keep_last: int, keep_hourly: int, keep_daily: int,
                keep_weekly: int, keep_monthly: int, vault_id: str | None, dry_run: bool,
                passphrase_file: str | None) -> None:
    """Remove the packages no --keep-* rule keeps and no kept package needs."""
    from eventvault.repo.retention import Policy, plan

    policy = Policy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly)
    if policy.empty:
        raise UsageError("give at least one --keep-* rule (forgetting everything is `rm`)")
    repository = open_repository(location, passphrase_file)
    infos = repository.packages(vault_id)
    removed = 0
    lines: list[str] = []
    decided: list[dict[str, Any]] = []
    for vault in sorted({info.vault_id for info in infos}):
        for decision in plan([i for i in infos if i.vault_id == vault], policy):
            info = decision.info
            decided.append({"name": info.name, "vault_id": info.vault_id,
                            "first_seq": info.base_seq + 1, "last_seq": info.head_seq,
                            "created_at": info.created_at, "keep": decision.keep,
                            "reasons": list(decision.reasons)})
            what = f"{info.name[:12]} (seq {info.base_seq + 1}-{info.head_seq}, written " \
                   f"{_time(info.created_at)})"
            if decision.keep:
                lines.append(f"keep    {what}: {', '.join(decision.reasons)}")
                continue
            verb = "would remove" if dry_run else "remove"
            lines.append(f"{verb}  {what}: no rule keeps it and no kept package needs it")
            if not dry_run:
                repository.remove(info)
            removed += 1
    lines.append(f"{'would remove' if dry_run else 'removed'} {removed} of {len(infos)} "
                 "packages")
    output.report(lines, {"location": location, "dry_run": dry_run, "removed": removed,
                          "packages": len(infos), "decisions": decided})


def parse_subset(text: str) -> float:
    number = text.strip().removesuffix("%")
    try:
        value = float(number) / 100
    except ValueError:
        raise UsageError(f"--read-data-subset expects a percentage like 10%, got {text!r}"
                         ) from None
    if not 0 < value <= 1:
        raise UsageError(f"--read-data-subset must be between 0% and 100%, got {text!r}")
    return value


@repo.command("check")
@click.argument("location")
@click.option("--read-data", is_flag=True, help="Download and verify every package.")
@click.option("--read-data-subset", metavar="P%", help="Download and verify P% of them.")
@passphrase_option
@output.options
def repo_check(location: str, read_data: bool, read_data_subset: str | None,
               passphrase_file: str | None) -> None:
    """Verify the repository's packages and chains (and their data when asked)."""
    from eventvault.repo.check import check

    fraction = 1.0 if read_data else parse_subset(read_data_subset) if read_data_subset else 0.0
    repository = open_repository(location, passphrase_file)
    with shown("check", "packages", quiet=output.quiet()) as progress:
        report = check(repository, fraction, progress)
    if output.as_json():  # the report is the one object, failed or not (then exit 1)
        output.emit_json({"location": location, **report.as_json()})
    elif not output.quiet():
        for note in report.notes:
            click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"FAIL {problem}", err=True)
    if report.problems:
        raise IntegrityError(f"repository check failed: {len(report.problems)} problem(s)")
    if not output.as_json() and not output.quiet():
        click.echo(f"OK {location}: {report.packages} packages, chains complete, "
                   f"{report.read} read and verified")


@repo.group("key")
def key() -> None:
    """The passphrases of an encrypted repository."""


def new_passphrase(new_passphrase_file: str | None) -> str:
    found = crypto.read_passphrase(new_passphrase_file, "EVENTVAULT_NEW_PASSPHRASE")
    if found is None:
        raise UsageError("give the new passphrase in EVENTVAULT_NEW_PASSPHRASE or with "
                         "--new-passphrase-file")
    return found


def new_passphrase_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--new-passphrase-file", type=click.Path(dir_okay=False),
                        metavar="FILE", help="The new passphrase "
                        "[default: env EVENTVAULT_NEW_PASSPHRASE].")(function)


@key.command("list")
@click.argument("location")
@passphrase_option
@output.options
def key_list(location: str, passphrase_file: str | None) -> None:
    """The key ids (one per passphrase)."""
    ids = open_repository(location, passphrase_file).key_ids()
    output.answer(ids, {"location": location, "keys": ids})


@key.command("add")
@click.argument("location")
@passphrase_option
@new_passphrase_option
@output.options
def key_add(location: str, passphrase_file: str | None, new_passphrase_file: str | None) -> None:
    """Let another passphrase open the repository too."""
    repository = open_repository(location, passphrase_file)
    added = repository.add_key(new_passphrase(new_passphrase_file))
    output.answer(f"added key {added}", {"location": location, "added": added})


@key.command("passwd")
@click.argument("location")
@passphrase_option
@new_passphrase_option
@output.options
def key_passwd(location: str, passphrase_file: str | None,
               new_passphrase_file: str | None) -> None:
    """Change the passphrase: a new key wraps the same data key, the old one is removed."""
    from eventvault.repo.repository import Repository

    passphrase = crypto.read_passphrase(passphrase_file)
    repository = Repository.open(location, passphrase)
    assert passphrase is not None  # open() refused otherwise
    old = repository.key_opened_by(passphrase)
    added = repository.add_key(new_passphrase(new_passphrase_file))
    repository.remove_key(old)
    output.answer(f"replaced key {old} by {added}; the data was not re-encrypted",
                  {"location": location, "removed": old, "added": added})


@key.command("remove")
@click.argument("location")
@click.argument("key_id")
@passphrase_option
@output.options
def key_remove(location: str, key_id: str, passphrase_file: str | None) -> None:
    """Remove a key (not the last one)."""
    open_repository(location, passphrase_file).remove_key(key_id)
    output.report(f"removed key {key_id}", {"location": location, "removed": key_id})


def describe(info: PackageInfo) -> str:
    kind = "full" if info.full else f"increment on seq {info.base_seq}"
    return f"{info.name[:12]} ({kind})"


# --- used by `snapshot`, `replay` and `verify` in backup.py ---------------------------------

def snapshot_elsewhere(vault: Any, output: str | None, repo_location: str | None, *, full: bool,
                       encrypt: bool, passphrase_file: str | None, since: str | None,
                       until_seq: int | None, at: int | None) -> None:
    """`snapshot --repo` or `snapshot -o s3://...` / `--encrypt`: write, then upload."""
    from eventvault import output as reporting  # `output` is the package's location here
    from eventvault.repo import transfer

    if repo_location is not None:
        if since is not None or encrypt:
            raise UsageError("with --repo, the repository decides the base and the encryption "
                             "(no --since, no --encrypt)")
        passphrase = crypto.read_passphrase(passphrase_file)
        repository = open_repository(repo_location, passphrase_file)
        if passphrase is not None and not repository.encrypted:
            # The one sign a client has that an emptied repository with a fresh "none"
            # config (docs/FORMAT.md, threat model) was meant to be encrypted.
            raise IntegrityError(f"{repo_location} is not encrypted, yet a passphrase was "
                                 "given: refusing to upload in plaintext (unset "
                                 "EVENTVAULT_PASSPHRASE to write to an unencrypted repository)")
        with shown("snapshot", "events", quiet=reporting.quiet()) as progress, \
                shown("upload", "B", quiet=reporting.quiet()) as upload:
            stored = transfer.snapshot_to_repository(vault, repository, full=full,
                                                     until_seq=until_seq, at=at,
                                                     progress=progress, upload=upload)
        footer = stored.result.footer
        data: dict[str, Any] = {
            "location": repo_location, "package": None, "base": None,
            "events": footer.event_count, "first_seq": stored.result.base_seq + 1,
            "last_seq": footer.head_seq, "bytes": None, "head_hash": footer.head_hash.hex(),
            "state_digest": footer.state_digest, "encrypted": repository.encrypted,
            "warnings": stored.result.warnings}
        if stored.base is not None:
            data["base"] = stored.base.name
        if stored.info is None:
            assert stored.base is not None
            reporting.report(f"nothing new since package {describe(stored.base)} (seq "
                             f"{stored.base.head_seq}); nothing written", data)
            return
        data.update(package=stored.info.name, bytes=stored.info.size)
        base = "" if stored.base is None else f", continues {describe(stored.base)}"
        lines = [f"stored package {describe(stored.info)} in {repo_location}: "
                 f"{footer.event_count} events (seq {stored.result.base_seq + 1}-"
                 f"{footer.head_seq}), {stored.info.size} bytes{base}"]
    else:
        assert output is not None
        if full:
            raise UsageError("--full goes with --repo")
        passphrase = crypto.read_passphrase(passphrase_file) if encrypt else None
        with shown("snapshot", "events", quiet=reporting.quiet()) as progress, \
                shown("upload", "B", quiet=reporting.quiet()) as upload:
            stored = transfer.snapshot_to_file(vault, output, encrypt=encrypt,
                                               passphrase=passphrase, until_seq=until_seq,
                                               at=at, since=since, progress=progress,
                                               upload=upload)
        footer = stored.result.footer
        sealed = ", encrypted" if encrypt else ""
        lines = [f"wrote {output}: {footer.event_count} events (seq "
                 f"{stored.result.base_seq + 1}-{footer.head_seq}), {stored.result.bytes} "
                 f"bytes{sealed}"]
        # The shape of a local snapshot's object, and whether it is encrypted.
        data = {"path": output, "events": footer.event_count,
                "first_seq": stored.result.base_seq + 1, "last_seq": footer.head_seq,
                "bytes": stored.result.bytes, "frames": len(footer.frames),
                "head_hash": footer.head_hash.hex(), "state_digest": footer.state_digest,
                "since": since, "warnings": stored.result.warnings, "encrypted": encrypt}
    lines += [f"head hash     {footer.head_hash.hex()}",
              f"state digest  {footer.state_digest}"]
    reporting.report(lines, data)
    for warning in stored.result.warnings:
        click.echo(f"eventvault: warning: {warning}", err=True)


def packages_to_replay(packages: tuple[str, ...], repo_location: str | None,
                       vault_id: str | None, passphrase_file: str | None,
                       until_seq: int | None, at: int | None,
                       download: Progress | None = None) -> Any:
    """A context manager giving the plain local package files to replay (`download`
    counting the bytes fetched from a repository or s3://)."""
    from eventvault.repo import transfer

    if repo_location is not None:
        repository = open_repository(repo_location, passphrase_file)
        return transfer.repository_packages(repository, vault_id, until_seq, at, download)
    if vault_id is not None:
        raise UsageError("--vault goes with --repo")
    return transfer.local_packages(packages, crypto.read_passphrase(passphrase_file),
                                   download)
