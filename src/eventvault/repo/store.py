"""The storage interface a repository is kept on: named objects, written whole or not at all.

Every backend makes an object visible only once it is complete (a rename after fsync on a
directory; a single PUT or a multipart upload completed last on S3), so a crash mid-write leaves
nothing under the real name. Transfers stream between the store and a local file, so memory
stays bounded whatever the size of a package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from eventvault.errors import EventVaultError


class StoreError(EventVaultError):
    """The storage cannot be reached, refuses a request, or lacks an object."""


class ObjectMissing(StoreError):
    """The named object does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # relative to the store's root, "/"-separated
    size: int


class Store(Protocol):
    """Where a repository's objects live. Names are "/"-separated, relative to the root."""

    location: str  # what a message names it as: a directory or s3://bucket/prefix

    def put_file(self, name: str, source: str | os.PathLike[str]) -> None:
        """Upload a finished local file; `name` appears only once all of it is stored."""

    def get_file(self, name: str, target: str | os.PathLike[str]) -> None:
        """Stream the object into the local file `target` (created, never overwritten)."""

    def put_bytes(self, name: str, data: bytes) -> None:
        """A small object (configuration, keys, package metadata), written atomically."""

    def get_bytes(self, name: str) -> bytes:
        """A small object's content (raises ObjectMissing)."""

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Complete objects whose name starts with `prefix`, sorted by name."""

    def delete(self, name: str) -> None:
        """Remove the object; removing a missing object is not an error."""


SMALL_OBJECT_LIMIT = 1 << 20  # get_bytes is for metadata: refuse to read anything larger


def open_store(location: str) -> Store:
    """A store for LOCATION: `s3://bucket/prefix` or a directory path."""
    if location.startswith("s3://"):
        from eventvault.repo.s3 import S3Store

        return S3Store(location)
    from eventvault.repo.directory import DirectoryStore

    return DirectoryStore(location)


def is_remote(location: str) -> bool:
    return location.startswith("s3://")
