"""The storage interface a repository is kept on: named objects, written whole or not at all.

Every backend makes an object visible only once it is complete (a rename after fsync on a
directory; a single PUT or a multipart upload completed last on S3), so a crash mid-write leaves
nothing under the real name. Transfers stream between the store and a local file, so memory
stays bounded whatever the size of a package.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol, TypeVar

from eventvault.errors import EventVaultError
from eventvault.progress import Progress

CHUNK = 1 << 20  # bytes a file is copied by, and how often its progress is told


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

    def put_file(self, name: str, source: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        """Upload a finished local file; `name` appears only once all of it is stored.
        `progress(bytes sent, bytes in all)` as it goes."""

    def get_file(self, name: str, target: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        """Stream the object into the local file `target` (created, never overwritten);
        `progress(bytes received, bytes in all)` as it goes."""

    def put_bytes(self, name: str, data: bytes) -> None:
        """A small object (configuration, keys, package metadata), written atomically."""

    def get_bytes(self, name: str) -> bytes:
        """A small object's content (raises ObjectMissing)."""

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Complete objects whose name starts with `prefix`, sorted by name."""

    def delete(self, name: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    def prepare(self) -> None:
        """Make the place for a new repository: the directory, or the bucket."""


SMALL_OBJECT_LIMIT = 1 << 20  # get_bytes is for metadata: refuse to read anything larger


def copy_file(source: BinaryIO, target: BinaryIO, progress: Progress | None) -> None:
    """Copy an open file to another a chunk at a time, telling `progress` after each."""
    total, done = os.fstat(source.fileno()).st_size, 0
    while chunk := source.read(CHUNK):
        target.write(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)


T = TypeVar("T")
RETRY_PAUSES = (0.2, 1.0)  # seconds before the 2nd and 3rd attempt


class RetryingStore:
    """Retries a failed request twice: a storage service's passing hiccup (a dropped
    connection, a 503) must not fail a backup. A missing object is an answer, not a hiccup.
    Every request is idempotent (whole objects, committed by the backend), so retrying is safe.
    """

    def __init__(self, store: Store, pauses: tuple[float, ...] = RETRY_PAUSES) -> None:
        self.inner = store
        self.location = store.location
        self._pauses = pauses

    def _retry(self, call: Callable[[], T]) -> T:
        for pause in self._pauses:
            try:
                return call()
            except ObjectMissing:
                raise
            except StoreError:
                time.sleep(pause)
        return call()

    def put_file(self, name: str, source: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        self._retry(lambda: self.inner.put_file(name, source, progress))

    def get_file(self, name: str, target: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        if os.path.lexists(target):
            raise FileExistsError(17, "File exists", os.fspath(target))

        def attempt() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)  # what a failed attempt left (checked absent before)
            self.inner.get_file(name, target, progress)

        self._retry(attempt)

    def put_bytes(self, name: str, data: bytes) -> None:
        self._retry(lambda: self.inner.put_bytes(name, data))

    def get_bytes(self, name: str) -> bytes:
        return self._retry(lambda: self.inner.get_bytes(name))

    def list(self, prefix: str) -> list[ObjectInfo]:
        return self._retry(lambda: self.inner.list(prefix))

    def delete(self, name: str) -> None:
        self._retry(lambda: self.inner.delete(name))

    def prepare(self) -> None:
        self._retry(self.inner.prepare)
