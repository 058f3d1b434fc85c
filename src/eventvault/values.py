"""Text every engine can store: refused at the door (one line) rather than deep in a replay.

PostgreSQL's text cannot hold NUL, no engine can store a lone surrogate (what Python's
surrogateescape makes of invalid UTF-8 in a command-line argument), and a field of megabytes
is a mistake or an attack. So every text value and argument a command records is checked here
first: a value written into SQLite today must replay into PostgreSQL tomorrow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from eventvault.errors import UsageError, ValidationError

DEFAULT_MAX_TEXT = 64 * 1024  # bytes of UTF-8
MAX_TEXT_ENV = "EVENTVAULT_MAX_TEXT"


def max_text_bytes(configured: int | None = None) -> int:
    """The longest text value accepted, in UTF-8 bytes: the argument, else
    EVENTVAULT_MAX_TEXT, else 64 KiB."""
    if configured is not None:
        if configured < 1:
            raise UsageError(f"the maximum text length must be at least 1 byte, not {configured}")
        return configured
    text = os.environ.get(MAX_TEXT_ENV)
    if not text:
        return DEFAULT_MAX_TEXT
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{MAX_TEXT_ENV} must be a number of bytes, not {text!r}") from None
    return max_text_bytes(value)


def storable_error(value: str) -> str | None:
    """Why `value` cannot be stored everywhere, or None if it can."""
    if "\x00" in value:
        return "contains a NUL byte"
    if value.isascii():  # the common case: no surrogate, nothing to encode
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def plainly_storable(value: str, limit: int) -> bool:
    """The common case, decided without building a message: ASCII (so as many UTF-8 bytes
    as characters), no NUL, within the limit. False: `check_text` decides."""
    return value.isascii() and len(value) <= limit and "\x00" not in value


def check_text(what: str, value: str, limit: int) -> None:
    """Refuse (ValidationError) a text value no engine can store, or one over `limit` bytes."""
    problem = storable_error(value)
    if problem is None and len(value) * 4 > limit:  # cheap bound before encoding
        size = len(value.encode("utf-8"))
        if size > limit:
            problem = f"is {size} bytes long; the limit is {limit} ({MAX_TEXT_ENV})"
    if problem is not None:
        raise ValidationError(f"{what} {problem}")


def check_fields(entity_type: str, fields: Mapping[str, object], limit: int) -> None:
    for name, value in fields.items():
        # The message's label is built only for a value the fast test does not pass: this
        # runs for every field of every command.
        if isinstance(value, str) and not plainly_storable(value, limit):
            check_text(f"{entity_type} {name}", value, limit)
