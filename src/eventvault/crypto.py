"""Encryption at rest: data keys wrapped by passphrases, and packages sealed chunk by chunk.

A repository (or a single encrypted package) has one random 256-bit data key. Each passphrase
wraps it in a *key slot*: scrypt derives a key-encryption key from the passphrase and a random
salt, and AES-256-GCM seals the data key with it. Several slots may wrap the same key; changing
a passphrase writes a new slot and removes the old one, never touching the data.

An encrypted package wraps the plain package file (docs/FORMAT.md, "Encrypted packages"): an
envelope header, then the file in 1 MiB chunks, each sealed with AES-256-GCM under a key
derived for this file alone (HKDF from the data key and a random file id). A chunk's nonce is
its index and a "last chunk" flag, and the header is authenticated with every chunk, so chunks
cannot be reordered, dropped, cut off or moved into another package without being refused.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

import msgpack

from eventvault.errors import EventVaultError, PackageError, UsageError

ENVELOPE_MAGIC, CHUNK_MAGIC = 0x184D2A53, 0x184D2A54  # zstd skippable frames: `zstd -t` passes
ENVELOPE_TAG = b"EVPKGENC"
ENVELOPE_VERSION = 1
FRAME_HEAD = struct.Struct("<II")
SECTION_HEAD = struct.Struct("<8sI")
CHUNK_SIZE = 1 << 20
TAG_SIZE = 16
CIPHER = "aes-256-gcm"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 17, 8, 1  # 128 MiB and ~0.3 s per attempt
MAX_SCRYPT_N = 1 << 20  # a slot may not make a reader spend more than 1 GiB
MAX_HEADER = 1 << 16


class PassphraseError(EventVaultError):
    """No passphrase was given, or none of the key slots opens with it."""


def _aead(key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


def new_data_key() -> bytes:
    return os.urandom(32)


def _kek(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    if not (1 < n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise PackageError("a key slot has out-of-range scrypt parameters")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def wrap_key(data_key: bytes, passphrase: str, context: bytes, *,
             n: int = SCRYPT_N) -> dict[str, Any]:
    """A key slot: the data key sealed under a key derived from `passphrase`."""
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = _aead(_kek(passphrase, salt, n, SCRYPT_R, SCRYPT_P)).encrypt(
        nonce, data_key, b"eventvault data key\0" + context)
    return {"kdf": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(),
            "nonce": nonce.hex(), "wrapped": sealed.hex()}


def slot_id(slot: dict[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(str(slot["salt"]))).hexdigest()[:12]


def unwrap_key(slots: list[dict[str, Any]], passphrase: str | None, context: bytes,
               what: str) -> tuple[bytes, dict[str, Any]]:
    """The data key and the slot that opened it; PassphraseError if none opens."""
    if passphrase is None:
        raise PassphraseError(f"{what} is encrypted: give its passphrase in EVENTVAULT_PASSPHRASE "
                              "or with --passphrase-file")
    for slot in slots:
        try:
            kek = _kek(passphrase, bytes.fromhex(slot["salt"]), int(slot["n"]), int(slot["r"]),
                       int(slot["p"]))
            return _aead(kek).decrypt(bytes.fromhex(slot["nonce"]), bytes.fromhex(
                slot["wrapped"]), b"eventvault data key\0" + context), slot
        except _invalid_tag():
            continue
        except (KeyError, TypeError, ValueError):
            raise PackageError(f"{what}: a key slot is malformed") from None
    raise PassphraseError(f"wrong passphrase: no key of {what} opens with it")


def read_passphrase(passphrase_file: str | None, variable: str = "EVENTVAULT_PASSPHRASE"
                    ) -> str | None:
    """From the file (its first line) if given, else the environment variable, else None."""
    if passphrase_file is not None:
        try:
            with open(passphrase_file, encoding="utf-8") as file:
                text = file.readline().rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"{passphrase_file}: cannot read the passphrase ({exc.strerror})"
                             ) from None
    else:
        text = os.environ.get(variable)
        if text is None:
            return None
    if not text:
        raise UsageError("the passphrase is empty")
    return text


def seal(data_key: bytes, data: bytes, context: bytes) -> bytes:
    """A small object (package metadata) sealed with the data key: nonce ‖ ciphertext."""
    nonce = os.urandom(12)
    return nonce + _aead(data_key).encrypt(nonce, data, b"eventvault object\0" + context)


def config_mac(data_key: bytes, config: dict[str, Any]) -> str:
    """HMAC-SHA256 of a repository config (canonical JSON, without its `mac`), under a key
    derived from the data key: only a holder of a passphrase can write a config that opens."""
    import hmac
    import json

    key = hmac.new(data_key, b"eventvault config mac", hashlib.sha256).digest()
    body = {name: value for name, value in config.items() if name != "mac"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def unseal(data_key: bytes, sealed: bytes, context: bytes, what: str) -> bytes:
    try:
        return _aead(data_key).decrypt(sealed[:12], sealed[12:], b"eventvault object\0" + context)
    except (_invalid_tag(), ValueError):
        raise PackageError(f"{what}: damaged, or not sealed with this repository's key") from None


# --- encrypted packages --------------------------------------------------------------------

def _file_key(data_key: bytes, file_id: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=file_id,
                info=b"eventvault package chunk key v1").derive(data_key)


def _nonce(index: int, last: bool) -> bytes:
    return struct.pack(">QI", index, 1 if last else 0)


def encrypt_file(source: str | os.PathLike[str], target: BinaryIO, data_key: bytes,
                 key: list[Any]) -> None:
    """Write the envelope of `source` to `target`. `key` says where the data key is kept:
    ["repository", repository_id] or ["passphrase", [slot, ...]]."""
    file_id = os.urandom(16)
    body = msgpack.packb([CIPHER, key, file_id, CHUNK_SIZE])
    content = SECTION_HEAD.pack(ENVELOPE_TAG, ENVELOPE_VERSION) + body
    header = FRAME_HEAD.pack(ENVELOPE_MAGIC, len(content)) + content
    target.write(header)
    aead = _aead(_file_key(data_key, file_id))
    with open(source, "rb") as plain:
        chunk, index = plain.read(CHUNK_SIZE), 0
        while True:
            following = plain.read(CHUNK_SIZE)
            last = not following
            sealed = aead.encrypt(_nonce(index, last), chunk, header + struct.pack(">Q", index))
            target.write(FRAME_HEAD.pack(CHUNK_MAGIC, len(sealed)) + sealed)
            if last:
                return
            chunk, index = following, index + 1


def is_encrypted(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as file:
            start = file.read(FRAME_HEAD.size + SECTION_HEAD.size)
    except OSError:
        return False
    return (len(start) == 20 and FRAME_HEAD.unpack_from(start)[0] == ENVELOPE_MAGIC
            and start[8:16] == ENVELOPE_TAG)


def read_envelope(file: BinaryIO, what: str) -> tuple[bytes, list[Any], bytes]:
    """(header bytes, key reference, file id) after checking the envelope header's form."""
    start = file.read(FRAME_HEAD.size + SECTION_HEAD.size)
    if len(start) < 20 or start[8:16] != ENVELOPE_TAG:
        raise PackageError(f"{what}: not an encrypted EventVault package")
    magic, length = FRAME_HEAD.unpack_from(start)
    version = SECTION_HEAD.unpack_from(start, 8)[1]
    if magic != ENVELOPE_MAGIC or not 12 < length <= MAX_HEADER:
        raise PackageError(f"{what}: encrypted package header is damaged")
    if version != ENVELOPE_VERSION:
        raise PackageError(f"{what}: unsupported encryption version {version} "
                           "(newer than this eventvault supports: upgrade eventvault)")
    rest = file.read(length - SECTION_HEAD.size)
    try:
        cipher, key, file_id, chunk_size = msgpack.unpackb(rest, raw=False)
        valid = (cipher == CIPHER and type(key) is list and len(key) == 2
                 and type(file_id) is bytes and len(file_id) == 16 and chunk_size == CHUNK_SIZE)
    except (ValueError, TypeError, msgpack.UnpackException):
        valid = False
    if not valid or len(rest) != length - SECTION_HEAD.size:
        raise PackageError(f"{what}: encrypted package header is damaged")
    return start + rest, key, file_id


def decrypt_file(source: str | os.PathLike[str], target: BinaryIO,
                 data_key_for: Callable[[list[Any]], bytes]) -> None:
    """Write the plain package inside `source` to `target`; any damage is a PackageError.

    `data_key_for` gets the header's key reference and returns the data key (or raises
    PassphraseError). The caller must discard `target` if this raises.
    """
    what = os.fspath(source)
    with open(source, "rb") as file:
        header, key, file_id = read_envelope(file, what)
        aead = _aead(_file_key(data_key_for(key), file_id))
        index = 0
        while True:
            head = file.read(FRAME_HEAD.size)
            if len(head) != FRAME_HEAD.size:
                raise PackageError(f"{what}: truncated (the last encrypted chunk is missing)")
            magic, length = FRAME_HEAD.unpack(head)
            if magic != CHUNK_MAGIC or not TAG_SIZE <= length <= CHUNK_SIZE + TAG_SIZE:
                raise PackageError(f"{what}: encrypted chunk {index} is damaged")
            sealed = file.read(length)
            if len(sealed) != length:
                raise PackageError(f"{what}: truncated (encrypted chunk {index} is cut short)")
            after = file.read(1)
            last = not after
            try:
                plain = aead.decrypt(_nonce(index, last), sealed, header + struct.pack(">Q", index))
            except _invalid_tag():
                raise PackageError(f"{what}: encrypted chunk {index} is damaged or was moved "
                                   "(authentication failed)") from None
            target.write(plain)
            if last:
                return
            file.seek(-1, os.SEEK_CUR)
            index += 1


def key_slots(key: list[Any], what: str) -> list[dict[str, Any]]:
    """The slots of a single encrypted package (key reference ["passphrase", slots])."""
    if key[0] != "passphrase" or type(key[1]) is not list or not all(
            type(slot) is dict for slot in key[1]):
        raise PackageError(f"{what} is encrypted with a repository's key: replay it with --repo")
    return key[1]


def open_single(passphrase: str | None, what: str) -> Callable[[list[Any]], bytes]:
    """The data-key lookup for a single encrypted package, from its own key slots."""
    def lookup(key: list[Any]) -> bytes:
        return unwrap_key(key_slots(key, what), passphrase, b"package", what)[0]

    return lookup

