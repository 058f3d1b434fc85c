"""A repository of packages on a store: adding packages, listing them, finding the chain that
restores a point in time, and the keys of an encrypted repository.

Objects (docs/FORMAT.md, "Repositories"):

    config                      what this is: format, id, encryption
    keys/ID                     an encrypted repository's key slots, one per passphrase
    packages/SHA256.evpkg       a package (encrypted: its envelope), named by its SHA-256
    index/SHA256.json           the package's metadata (encrypted: sealed with the data key)

A package is committed by writing its index object after the package itself: `repo list` and
`replay` see only packages with an index object, so an interrupted snapshot (package uploaded,
index not yet) leaves nothing they take. `forget` removes in the other order.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eventvault import crypto
from eventvault.errors import EventVaultError, PackageError, UsageError
from eventvault.package import PackageReader
from eventvault.progress import Progress
from eventvault.repo.locations import open_store
from eventvault.repo.store import ObjectMissing, Store

REPOSITORY_FORMAT = 1
PACKAGES, INDEX, KEYS = "packages/", "index/", "keys/"


class RepositoryError(EventVaultError):
    """The location holds no repository, or one this eventvault cannot use."""


@dataclass(frozen=True)
class PackageInfo:
    """What `repo list` shows of a package, kept in its index object."""

    name: str  # SHA-256 of the stored object, hex
    vault_id: str
    base_seq: int
    base_hash: str
    head_seq: int
    head_hash: str
    first_time: int | None
    last_time: int | None
    event_count: int
    created_at: int
    state_digest: str
    size: int  # bytes as stored (encrypted: the envelope)

    @property
    def full(self) -> bool:
        return self.base_seq == 0

    @property
    def object_name(self) -> str:
        return f"{PACKAGES}{self.name}.evpkg"


def _sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def private_directory() -> Iterator[Path]:
    """A temporary directory only this user can read (decrypted packages pass through it)."""
    with tempfile.TemporaryDirectory(prefix="eventvault-") as name:
        os.chmod(name, 0o700)
        yield Path(name)


class Repository:
    def __init__(self, store: Store, config: dict[str, Any], data_key: bytes | None,
                 scrypt_n: int = crypto.SCRYPT_N) -> None:
        self.store = store
        self.scrypt_n = scrypt_n  # a new key costs what the one that opened it costs
        self.id: str = config["id"]
        self.encrypted = config["encryption"] != "none"
        self._data_key = data_key

    @property
    def location(self) -> str:
        return self.store.location

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    def init(cls, location: str | Store, *, encrypt: bool, passphrase: str | None,
             scrypt_n: int = crypto.SCRYPT_N) -> Repository:
        store = open_store(location) if isinstance(location, str) else location
        location = store.location
        store.prepare()
        try:
            store.get_bytes("config")
            raise UsageError(f"{location} holds a repository already")
        except ObjectMissing:
            pass
        if encrypt and passphrase is None:
            raise UsageError("--encrypt needs a passphrase: EVENTVAULT_PASSPHRASE or "
                             "--passphrase-file")
        config = {"format": "eventvault-repository", "version": REPOSITORY_FORMAT,
                  "id": uuid.uuid4().hex, "encryption": crypto.CIPHER if encrypt else "none"}
        data_key = None
        if encrypt:
            assert passphrase is not None
            data_key = crypto.new_data_key()
            slot = crypto.wrap_key(data_key, passphrase, config["id"].encode(), n=scrypt_n)
            store.put_bytes(f"{KEYS}{crypto.slot_id(slot)}", json.dumps(slot).encode())
            config["mac"] = crypto.config_mac(data_key, config)
        store.put_bytes("config", json.dumps(config, indent=1).encode())  # last: commits init
        return cls(store, config, data_key, scrypt_n)

    @classmethod
    def open(cls, location: str | Store, passphrase: str | None = None) -> Repository:
        store = open_store(location) if isinstance(location, str) else location
        location = store.location
        try:
            config = json.loads(store.get_bytes("config"))
            valid = (config.get("format") == "eventvault-repository"
                     and type(config.get("id")) is str
                     and config.get("encryption") in ("none", crypto.CIPHER))
        except ObjectMissing:
            raise RepositoryError(f"{location} is not a repository (no config); create one with "
                                  "`eventvault repo init`") from None
        except (ValueError, AttributeError):
            valid = False
        if not valid:
            raise RepositoryError(f"{location}: the repository config is damaged")
        if config.get("version") != REPOSITORY_FORMAT:
            raise RepositoryError(f"{location}: repository version {config.get('version')} is "
                                  "not supported by this eventvault (upgrade eventvault)")
        if config["encryption"] == "none":
            cls._refuse_downgrade(store)
            return cls(store, config, None)
        slots = [slot for _, slot in cls._slots(store)]
        if not slots:
            raise RepositoryError(f"{location}: the repository is encrypted but has no keys")
        data_key, slot = crypto.unwrap_key(slots, passphrase, config["id"].encode(), location)
        # A repository made before the config was authenticated has no mac (docs/FORMAT.md);
        # one without a key can only have changed it to "none", which is refused above.
        if "mac" in config and config["mac"] != crypto.config_mac(data_key, config):
            raise RepositoryError(f"{location}: the repository config was changed by someone "
                                  "without its key; refusing to use it")
        return cls(store, config, data_key, int(slot["n"]))

    @staticmethod
    def _refuse_downgrade(store: Store) -> None:
        """A config saying "none" is believed only if nothing in the repository is encrypted:
        no key object, and an index object that is plain JSON (one is read: they are all
        sealed or all plain, unless someone rewrote the config)."""
        tampered = (f"{store.location}: the config says unencrypted, but the repository "
                    "{}: the config was tampered with; refusing to use it")
        if any(True for _ in store.list(KEYS)):
            raise RepositoryError(tampered.format("has keys"))
        first = next((info.name for info in store.list(INDEX) if info.name.endswith(".json")),
                     None)
        if first is not None:
            try:
                plain = type(json.loads(store.get_bytes(first))) is dict
            except (ValueError, UnicodeDecodeError):
                plain = False
            if not plain:
                raise RepositoryError(tampered.format("holds encrypted index objects"))

    @staticmethod
    def _slots(store: Store) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for info in store.list(KEYS):
            try:
                found.append((info.name[len(KEYS):], json.loads(store.get_bytes(info.name))))
            except ValueError:
                raise RepositoryError(f"{store.location}: key {info.name} is damaged") from None
        return found

    # --- keys ------------------------------------------------------------------------------

    def key_ids(self) -> list[str]:
        return [name for name, _ in self._slots(self.store)]

    def add_key(self, passphrase: str) -> str:
        if self._data_key is None:
            raise UsageError(f"{self.location} is not encrypted: it has no keys")
        slot = crypto.wrap_key(self._data_key, passphrase, self.id.encode(), n=self.scrypt_n)
        self.store.put_bytes(f"{KEYS}{crypto.slot_id(slot)}", json.dumps(slot).encode())
        return crypto.slot_id(slot)

    def remove_key(self, key_id: str) -> None:
        ids = self.key_ids()
        if key_id not in ids:
            raise UsageError(f"{self.location} has no key {key_id}")
        if len(ids) == 1:
            raise UsageError("that is the repository's last key: add another one first")
        self.store.delete(f"{KEYS}{key_id}")

    def key_opened_by(self, passphrase: str) -> str:
        """The id of the slot this passphrase opens (for `repo key passwd`)."""
        for key_id, slot in self._slots(self.store):
            try:
                crypto.unwrap_key([slot], passphrase, self.id.encode(), self.location)
                return key_id
            except crypto.PassphraseError:
                continue
        raise crypto.PassphraseError(f"wrong passphrase: no key of {self.location} opens with it")

    # --- packages --------------------------------------------------------------------------

    def packages(self, vault_id: str | None = None) -> list[PackageInfo]:
        """Committed packages (those with an index object), oldest head first."""
        infos = [self.read_index(info.name) for info in self.store.list(INDEX)
                 if info.name.endswith(".json")]
        return sorted((info for info in infos if vault_id in (None, info.vault_id)),
                      key=lambda info: (info.vault_id, info.head_seq, info.created_at))

    def read_index(self, object_name: str) -> PackageInfo:
        name = object_name[len(INDEX):-len(".json")]
        data = self.store.get_bytes(object_name)
        if self._data_key is not None:
            data = crypto.unseal(self._data_key, data, name.encode(),
                                 f"{self.location}/{object_name}")
        try:
            info = PackageInfo(**json.loads(data))
        except (ValueError, TypeError):
            raise PackageError(f"{self.location}/{object_name} is damaged") from None
        if info.name != name:
            raise PackageError(f"{self.location}/{object_name} describes another package")
        return info

    def add(self, path: str | os.PathLike[str], upload: Progress | None = None) -> PackageInfo:
        """Upload a finished local package: the package (encrypted if the repository is),
        then its index object, which is what makes it part of the repository."""
        reader = PackageReader(path)
        header, footer = reader.header, reader.footer
        with private_directory() as work:
            stored = Path(path)
            if self._data_key is not None:
                stored = work / "sealed.evpkg"
                fd = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as file:
                    crypto.encrypt_file(path, file, self._data_key, ["repository", self.id])
            name = _sha256_file(stored)
            info = PackageInfo(
                name=name, vault_id=header.vault_id, base_seq=header.base_seq,
                base_hash=header.base_hash.hex(), head_seq=footer.head_seq,
                head_hash=footer.head_hash.hex(), first_time=footer.first_time,
                last_time=footer.last_time, event_count=footer.event_count,
                created_at=header.created_at, state_digest=footer.state_digest,
                size=stored.stat().st_size)
            self.store.put_file(info.object_name, stored, upload)
        data = json.dumps(asdict(info)).encode()
        if self._data_key is not None:
            data = crypto.seal(self._data_key, data, name.encode())
        self.store.put_bytes(f"{INDEX}{name}.json", data)
        return info

    def remove(self, info: PackageInfo) -> None:
        """Index first: a package stops being taken before its data goes."""
        self.store.delete(f"{INDEX}{info.name}.json")
        self.store.delete(info.object_name)

    def download(self, info: PackageInfo, directory: Path,
                 progress: Progress | None = None) -> Path:
        """The package as a plain local file in `directory`, its name and content checked."""
        target = directory / f"{info.name[:16]}.evpkg"
        fetched = directory / f"{info.name[:16]}.download"
        self.store.get_file(info.object_name, fetched, progress)
        try:
            if _sha256_file(fetched) != info.name:
                raise PackageError(f"{self.location}/{info.object_name}: content does not match "
                                   "its name (damaged in storage or in transit)")
            if self._data_key is None:
                fetched.rename(target)
                return target
            key = self._data_key
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as file:
                    crypto.decrypt_file(fetched, file, lambda _ref: key)
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            return target
        finally:
            fetched.unlink(missing_ok=True)

    # --- chains ----------------------------------------------------------------------------

    def vault_of(self, infos: list[PackageInfo], vault_id: str | None) -> str:
        vaults = sorted({info.vault_id for info in infos})
        if vault_id is not None:
            return vault_id
        if not vaults:
            raise UsageError(f"{self.location} holds no packages")
        if len(vaults) > 1:
            raise UsageError(f"{self.location} holds packages of {len(vaults)} vaults "
                             f"({', '.join(vaults)}); say which with --vault")
        return vaults[0]
