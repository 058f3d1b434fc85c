"""Which store a location names: `s3://bucket/prefix` or a directory path.

Apart from store.py, so that the interface does not import its implementations.
"""

from __future__ import annotations

from eventvault.repo.store import RetryingStore, Store


def open_store(location: str) -> Store:
    """A store for LOCATION (`s3://bucket/prefix` or a directory path), retrying hiccups."""
    store: Store
    if location.startswith("s3://"):
        from eventvault.repo.s3 import S3Store

        store = S3Store(location)
    else:
        from eventvault.repo.directory import DirectoryStore

        store = DirectoryStore(location)
    return RetryingStore(store)


def is_remote(location: str) -> bool:
    return location.startswith("s3://")
