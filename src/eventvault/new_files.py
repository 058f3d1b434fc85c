"""New files written safely: a private temporary file beside the target, then its name.

The temporary file gets a unique name, is created exclusively (O_EXCL) and without following a
symbolic link (O_NOFOLLOW: a link planted at a guessable name cannot redirect the write), mode
0600; the finished file is linked to its real name, which never replaces a file already there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from typing import BinaryIO


def create_beside(path: str) -> tuple[BinaryIO, str]:
    """A new, empty temporary file in `path`'s directory, open for writing, and its name."""
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(temporary, flags, 0o600), "wb"), temporary


def link_new(source: str, path: str) -> None:
    """Give the finished file its name, never replacing a file already there (EEXIST)."""
    try:
        os.link(source, path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # A file system without hard links: check, then rename (a narrow race, not a silent one
        # in the common case of an existing file).
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path) from None
        os.rename(source, path)


def fsync_directory(path: str) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse to fsync a directory
        directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
