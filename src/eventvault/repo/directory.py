"""A store in a local (or mounted) directory: objects are files, committed by rename."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from eventvault.progress import Progress
from eventvault.repo.store import (
    SMALL_OBJECT_LIMIT,
    ObjectInfo,
    ObjectMissing,
    StoreError,
    copy_file,
)

TEMP_DIR = "tmp"  # uncommitted writes: never listed, safe to delete when no write is running


class DirectoryStore:
    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.root = Path(location)
        self.location = str(location)

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(part in ("", ".", "..") for part in parts):
            raise StoreError(f"{self.location}: invalid object name {name!r}")
        return self.root.joinpath(*parts)

    def _commit(self, name: str, write: object) -> None:
        """Write into tmp/ under a unique name, fsync, rename into place, fsync the directory."""
        target = self._path(name)
        temp_dir = self.root / TEMP_DIR
        temp = temp_dir / f"{uuid.uuid4().hex}.partial"
        try:
            temp_dir.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as file:
                write(file)  # type: ignore[operator]
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise StoreError(f"{self.location}: cannot write {name} ({exc.strerror})") from None
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise

    def put_file(self, name: str, source: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        def copy(file: object) -> None:
            with open(source, "rb") as data:
                copy_file(data, file, progress)  # type: ignore[arg-type]

        self._commit(name, copy)

    def put_bytes(self, name: str, data: bytes) -> None:
        self._commit(name, lambda file: file.write(data))  # type: ignore[attr-defined]

    def get_file(self, name: str, target: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        try:
            with open(self._path(name), "rb") as data:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as file:
                    copy_file(data, file, progress)
        except FileNotFoundError:
            raise ObjectMissing(f"{self.location}: {name} does not exist") from None
        except OSError as exc:
            raise StoreError(f"{self.location}: cannot read {name} ({exc.strerror})") from None

    def get_bytes(self, name: str) -> bytes:
        try:
            with open(self._path(name), "rb") as file:
                data = file.read(SMALL_OBJECT_LIMIT + 1)
        except FileNotFoundError:
            raise ObjectMissing(f"{self.location}: {name} does not exist") from None
        except OSError as exc:
            raise StoreError(f"{self.location}: cannot read {name} ({exc.strerror})") from None
        if len(data) > SMALL_OBJECT_LIMIT:
            raise StoreError(f"{self.location}: {name} is too large for a metadata object")
        return data

    def list(self, prefix: str) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        if not self.root.is_dir():
            raise StoreError(f"{self.location}: no such directory")
        for path in self.root.rglob("*"):
            name = path.relative_to(self.root).as_posix()
            if name.startswith(f"{TEMP_DIR}/") or not name.startswith(prefix):
                continue
            if path.is_file() and not path.is_symlink():
                found.append(ObjectInfo(name, path.stat().st_size))
        return sorted(found, key=lambda info: info.name)

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.location} is a file, not a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.location}: cannot create ({exc.strerror})") from None

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"{self.location}: cannot delete {name} ({exc.strerror})") from None
