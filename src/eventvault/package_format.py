"""The package format's metadata: header, footer, frame index and checkpoints as
dataclasses, the checksummed metadata frames (sections) that carry them, and the checks a
reader makes of them before it trusts a byte (docs/FORMAT.md is the specification).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from eventvault.events import GENESIS_HASH

# Version 2 is version 1 whose records may have the 11th element (the principal): the same
# layout, declared so that a 0.1 reader says "upgrade" rather than "malformed record". A
# writer declares 2 exactly when a record has 11 elements; readers take both.
FORMAT_VERSION = 2  # the newest this reads
FORMAT_VERSIONS = (1, 2)
BASE_VERSION = 1  # what a package of 10-element records declares (0.1 reads it)
PRINCIPAL_VERSION = 2  # what a package holding any 11-element record declares
ELEVEN_ELEMENTS = b"\x9b"  # how a record's msgpack encoding starts when it has 11 elements

SKIPPABLE_MAGIC = 0x184D2A50
HEADER_MAGIC, FOOTER_MAGIC, LOCATOR_MAGIC = (SKIPPABLE_MAGIC + n for n in range(3))
HEADER_TAG, FOOTER_TAG, LOCATOR_TAG = b"EVPKGHDR", b"EVPKGFTR", b"EVPKGLOC"
FRAME_HEAD = struct.Struct("<II")  # skippable frame: magic, content length
SECTION_HEAD = struct.Struct("<8sI")  # metadata frame content: tag, format version
LOCATOR_BODY = struct.Struct("<QQ")  # footer offset, footer length
PREFIX = FRAME_HEAD.size + SECTION_HEAD.size  # 20 bytes, the same in every format version
SHA = 32
LOCATOR_SIZE = PREFIX + LOCATOR_BODY.size + SHA  # 68
NO_TIME = -(1 << 63)  # below any recorded_at, so the hot path compares ints only


@dataclass(frozen=True, slots=True)
class PackageHeader:
    format_version: int
    schema_revision: str
    vault_id: str
    base_seq: int  # 0 for a full package, else the head seq of the package it continues
    base_hash: bytes  # chain hash before the first event
    created_at: int  # µs since the epoch


@dataclass(frozen=True, slots=True)
class FrameInfo:
    offset: int
    length: int
    first_seq: int
    last_seq: int
    first_time: int
    last_time: int
    count: int
    checksum: bytes  # SHA-256 of the compressed frame
    end_hash: bytes  # chain hash after the frame's last event


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    recorded_at: int
    chain_hash: bytes
    counts: dict[str, int]
    state_digest: str | None


@dataclass(frozen=True, slots=True)
class PackageFooter:
    head_seq: int
    head_hash: bytes
    first_time: int | None
    last_time: int | None
    event_count: int
    counts: dict[str, int]
    state_digest: str
    checkpoints: tuple[Checkpoint, ...]
    frames: tuple[FrameInfo, ...]
    # The canonical schema the log declares at the head; None: the built-in dms v1 (and every
    # footer before eventvault 0.2, whose 9-element body has no such element).
    schema: bytes | None = None


class Corrupt(Exception):
    """A reason a package is unusable; the reader prefixes it with the file name."""


def section(magic: int, tag: bytes, body: bytes, version: int) -> bytes:
    content = SECTION_HEAD.pack(tag, version) + body
    content += hashlib.sha256(content).digest()
    return FRAME_HEAD.pack(magic, len(content)) + content


def open_section(frame: bytes, magic: int, tag: bytes, what: str, version: int) -> bytes:
    """Body of a metadata frame, after checking its framing, checksum and version (every
    section of a package has the header's)."""
    if len(frame) < PREFIX + SHA:
        raise Corrupt(f"{what} is truncated")
    got_magic, size = FRAME_HEAD.unpack_from(frame)
    got_tag, got_version = SECTION_HEAD.unpack_from(frame, FRAME_HEAD.size)
    if got_magic != magic or got_tag != tag or size != len(frame) - FRAME_HEAD.size:
        raise Corrupt(f"{what} frame is damaged")
    content = frame[FRAME_HEAD.size : -SHA]
    if hashlib.sha256(content).digest() != frame[-SHA:]:
        raise Corrupt(f"{what} checksum mismatch")
    if got_version != version:
        raise Corrupt(f"{what} has format version {got_version}, the header {version}")
    return content[SECTION_HEAD.size :]


# Header and footer bodies are msgpack arrays in dataclass field order (the header without
# format_version, which sits in the fixed prefix). Every decoded value is type-checked, with
# `type(v) is int` because msgpack booleans would pass isinstance(v, int).
CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: type(v) is int,
    "int?": lambda v: v is None or type(v) is int,
    "seq": lambda v: type(v) is int and v >= 0,
    "str": lambda v: type(v) is str,
    "str?": lambda v: v is None or type(v) is str,
    "hash": lambda v: type(v) is bytes and len(v) == SHA,
    "counts": lambda v: type(v) is dict and all(
        type(k) is str and type(n) is int and n >= 0 for k, n in v.items()),
    "list": lambda v: type(v) is list,
}
HEADER_TYPES = ("str", "str", "seq", "hash", "int")
FOOTER_TYPES = ("seq", "hash", "int?", "int?", "seq", "counts", "str", "list", "list")
CHECKPOINT_TYPES = ("seq", "int", "hash", "counts", "str?")
FRAME_TYPES = ("seq", "seq", "seq", "seq", "int", "int", "seq", "hash", "hash")


def typed(item: Any, types: tuple[str, ...], what: str) -> list[Any]:
    if not (type(item) is list and len(item) == len(types)
            and all(CHECKS[kind](v) for kind, v in zip(types, item, strict=True))):
        raise Corrupt(f"{what} is malformed")
    return item


def unpack(body: bytes, types: tuple[str, ...], what: str) -> list[Any]:
    try:
        return typed(msgpack.unpackb(body, raw=False), types, what)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise Corrupt(f"{what} is malformed ({exc})") from None


def decode_header(body: bytes, version: int = BASE_VERSION) -> PackageHeader:
    header = PackageHeader(version, *unpack(body, HEADER_TYPES, "header"))
    if header.base_seq == 0 and header.base_hash != GENESIS_HASH:
        raise Corrupt("header is malformed (a full package must start at the genesis hash)")
    return header


def decode_footer(body: bytes) -> PackageFooter:
    try:
        item = msgpack.unpackb(body, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise Corrupt(f"footer is malformed ({exc})") from None
    schema = None
    if type(item) is list and len(item) == len(FOOTER_TYPES) + 1:
        schema = item.pop()
        if type(schema) is not bytes:
            raise Corrupt("footer is malformed (schema)")
    *head, checkpoints, frames = typed(item, FOOTER_TYPES, "footer")
    return PackageFooter(
        *head, tuple(Checkpoint(*typed(c, CHECKPOINT_TYPES, "checkpoint")) for c in checkpoints),
        tuple(FrameInfo(*typed(f, FRAME_TYPES, "frame index")) for f in frames), schema)


def check_index(header: PackageHeader, footer: PackageFooter, start: int, end: int) -> None:
    """The footer must describe exactly the bytes between header and footer, gaplessly."""
    offset, seq, time, end_hash = start, header.base_seq, NO_TIME, header.base_hash
    for number, frame in enumerate(footer.frames, 1):
        if frame.offset != offset or frame.length <= 0:
            raise Corrupt(f"frame index is inconsistent (frame {number} offset)")
        if (frame.first_seq != seq + 1 or frame.count < 1
                or frame.last_seq != seq + frame.count):
            raise Corrupt(f"frame index is inconsistent (frame {number} does not continue "
                           f"seq {seq})")
        if not time <= frame.first_time <= frame.last_time:
            raise Corrupt(f"frame index is inconsistent (frame {number} goes back in time)")
        offset, seq, time = offset + frame.length, frame.last_seq, frame.last_time
        end_hash = frame.end_hash
    frames = footer.frames
    if (offset != end or footer.head_seq != seq or footer.head_hash != end_hash
            or footer.event_count != seq - header.base_seq
            or footer.first_time != (frames[0].first_time if frames else None)
            or footer.last_time != (frames[-1].last_time if frames else None)):
        raise Corrupt("footer does not match its frame index")
    boundaries = {frame.last_seq: frame for frame in frames}
    previous = header.base_seq
    for point in footer.checkpoints:
        frame = boundaries.get(point.seq)
        if (frame is None or point.seq <= previous or point.chain_hash != frame.end_hash
                or point.recorded_at != frame.last_time):
            raise Corrupt(f"checkpoint at seq {point.seq} does not match the frame index")
        previous = point.seq
