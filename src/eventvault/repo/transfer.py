"""Packages between the vault's machine and a repository or a remote location: a snapshot is
written to a private local file first and uploaded once finished; packages to replay are
downloaded (and decrypted) into a private temporary directory first, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eventvault import crypto
from eventvault.errors import PackageError, UsageError
from eventvault.new_files import create_beside, fsync_directory, link_new
from eventvault.progress import Progress
from eventvault.repo.chains import pick
from eventvault.repo.locations import is_remote, open_store
from eventvault.repo.repository import PackageInfo, Repository, private_directory
from eventvault.repo.store import ObjectMissing, Store
from eventvault.snapshot import SnapshotResult, snapshot
from eventvault.vault import Vault


@dataclass(frozen=True)
class Stored:
    result: SnapshotResult  # the local package, as written (before upload)
    where: str  # where it is kept now
    base: PackageInfo | None = None  # the repository package it continues
    info: PackageInfo | None = None  # its repository entry


def remote_object(location: str) -> tuple[Store, str]:
    """s3://bucket/dir/name.evpkg -> (the store of s3://bucket/dir, "name.evpkg")."""
    parent, _, name = location.rstrip("/").rpartition("/")
    if not name or parent in ("s3:", "s3:/"):
        raise UsageError(f"{location}: give an object name, as in s3://bucket/dir/name.evpkg")
    return open_store(parent), name


def _seal_single(plain: Path, work: Path, passphrase: str | None) -> Path:
    if passphrase is None:
        raise UsageError("--encrypt needs a passphrase: EVENTVAULT_PASSPHRASE or "
                         "--passphrase-file")
    data_key = crypto.new_data_key()
    slot = crypto.wrap_key(data_key, passphrase, b"package")
    sealed = work / "sealed.evpkg"
    fd = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as file:
        crypto.encrypt_file(plain, file, data_key, ["passphrase", [slot]])
    return sealed


def _place(source: Path, target: Path) -> None:
    """Copy a finished file to `target` as the package writer does (new_files.py): a private
    temporary file beside it, fsync, then a link that never replaces an existing file."""
    try:
        file, partial = create_beside(str(target))
    except OSError as exc:
        raise PackageError(f"{target}: cannot create ({exc.strerror})") from None
    try:
        with file, open(source, "rb") as data:
            shutil.copyfileobj(data, file, 1 << 20)
            file.flush()
            os.fsync(file.fileno())
        link_new(partial, str(target))
        fsync_directory(str(target))
    except FileExistsError:
        raise UsageError(f"{target} exists already; choose another name or remove it first"
                         ) from None
    except OSError as exc:
        raise PackageError(f"{target}: cannot write ({exc.strerror})") from None
    finally:
        Path(partial).unlink(missing_ok=True)


def snapshot_to_file(vault: Vault, output: str, *, encrypt: bool, passphrase: str | None,
                     until_seq: int | None, at: int | None, since: str | None,
                     progress: Progress | None = None, upload: Progress | None = None
                     ) -> Stored:
    """A single package to a local path or s3://bucket/key, encrypted if asked; `progress`
    counts the events written, `upload` the bytes sent to s3://."""
    if encrypt and passphrase is None:
        _seal_single(Path(), Path(), None)  # the same one-line refusal, before any work
    if not is_remote(output) and Path(output).exists():
        raise UsageError(f"{output} exists already; choose another name or remove it first")
    with private_directory() as work:
        result = snapshot(vault, work / "package.evpkg", since=since, until_seq=until_seq, at=at,
                          progress=progress)
        final = _seal_single(result.path, work, passphrase) if encrypt else result.path
        if is_remote(output):
            store, name = remote_object(output)
            store.put_file(name, final, upload)
        else:
            _place(final, Path(output))
        size = final.stat().st_size
    return Stored(SnapshotResult(Path(output), result.footer, result.base_seq, size,
                                 result.warnings), output)


def snapshot_to_repository(vault: Vault, repository: Repository, *, full: bool,
                           until_seq: int | None, at: int | None,
                           progress: Progress | None = None, upload: Progress | None = None
                           ) -> Stored:
    """A package into the repository: incremental on its latest package of this vault;
    `progress` counts the events written, `upload` the package's bytes stored."""
    with vault.reading() as connection:
        vault_id = vault.vault_id(connection)
    base = None
    if not full:
        chained = [info for info in repository.packages(vault_id)]
        if chained:
            base = pick(chained)[-1]
    head = None if base is None else (vault_id, base.head_seq, bytes.fromhex(base.head_hash))
    with private_directory() as work:
        result = snapshot(vault, work / "package.evpkg", until_seq=until_seq, at=at,
                          base_head=head, progress=progress)
        if base is not None and result.footer.event_count == 0:
            return Stored(result, repository.location, base, None)
        info = repository.add(result.path, upload)
    return Stored(result, repository.location, base, info)


@contextmanager
def local_packages(sources: Sequence[str], passphrase: str | None,
                   download: Progress | None = None) -> Iterator[list[str]]:
    """The given packages as plain local files: s3:// ones downloaded (`download` counting
    each one's bytes), encrypted ones decrypted, into a private temporary directory that is
    removed afterwards."""
    if not any(is_remote(s) or crypto.is_encrypted(s) for s in sources):
        yield list(sources)
        return
    with private_directory() as work:
        local: list[str] = []
        for number, source in enumerate(sources):
            path = Path(source)
            if is_remote(source):
                store, name = remote_object(source)
                path = work / f"{number}-{name}"
                try:
                    store.get_file(name, path, download)
                except ObjectMissing:
                    raise UsageError(f"{source} does not exist") from None
            if crypto.is_encrypted(path):
                plain = work / f"{number}-{Path(source).name}.plain"
                fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as file:
                    crypto.decrypt_file(path, file, crypto.open_single(passphrase, source))
                path = plain
            local.append(str(path))
        yield local


@contextmanager
def repository_packages(repository: Repository, vault_id: str | None, until_seq: int | None,
                        at: int | None, download: Progress | None = None
                        ) -> Iterator[list[str]]:
    """The chain restoring the point asked for, downloaded, full package first; `download`
    counts the bytes of the whole chain."""
    infos = repository.packages()
    vault_id = repository.vault_of(infos, vault_id)
    chain = pick([info for info in infos if info.vault_id == vault_id],
                 until_seq=until_seq, at=at)
    total, before = sum(info.size for info in chain), 0

    def counted(done: int, _size: int) -> None:  # one package's bytes, as the chain's
        assert download is not None
        download(before + done, total)

    with private_directory() as work:
        local = []
        for info in chain:
            local.append(str(repository.download(info, work, counted if download else None)))
            before += info.size
        yield local
