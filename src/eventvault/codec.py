"""How event records are stored in the database: canonical msgpack, zstd where it pays.

Measured on this domain's records (120-300 bytes): zstd on one record alone saves nothing,
because most of a record is random UUIDs and hashes do not compress. So short records are
stored as they are and only long ones (free text, long titles) are compressed, and only when
that makes them smaller. A stored record is told apart by its first bytes: a canonical record
is a msgpack array (first byte 0x9a), never the zstd magic number.
"""

from __future__ import annotations

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESS_FROM = 512  # bytes; below this zstd never won on measured records

_compressor = zstandard.ZstdCompressor(level=3)
_decompressor = zstandard.ZstdDecompressor()


def to_stored(record: bytes) -> bytes:
    if len(record) < COMPRESS_FROM:
        return record
    compressed = _compressor.compress(record)
    return compressed if len(compressed) < len(record) else record


def from_stored(stored: bytes) -> bytes:
    if stored[:4] == ZSTD_MAGIC:
        # One record is always exactly one frame written with its content size.
        return _decompressor.decompress(stored)
    return stored
