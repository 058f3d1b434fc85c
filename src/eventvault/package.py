"""Package files: write and read one self-verifying file holding a stretch of the event log.

Layout (docs/FORMAT.md is the specification):

    header frame | event frame 1 .. n | footer frame | locator frame

Header, footer and locator are zstd skippable frames, so the whole file is a valid zstd stream
whose content is the canonical event records back to back. The fixed-size locator at the end
points at the footer (frame index, checkpoints, head); every metadata frame carries its own
SHA-256 and the index carries the SHA-256 of every event frame, so damage is found before any
byte is decompressed, and the recomputed hash chain catches what checksums alone cannot.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import operator
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import astuple, replace
from itertools import pairwise
from types import TracebackType
from typing import Any, BinaryIO

import msgpack
import zstandard

from eventvault import new_files
from eventvault.errors import PackageError, UsageError
from eventvault.events import RECORD_TYPES, Event, is_principal
from eventvault.package_format import (
    BASE_VERSION,
    ELEVEN_ELEMENTS,
    FOOTER_MAGIC,
    FOOTER_TAG,
    FORMAT_VERSION,
    FORMAT_VERSIONS,
    FRAME_HEAD,
    HEADER_MAGIC,
    HEADER_TAG,
    LOCATOR_BODY,
    LOCATOR_MAGIC,
    LOCATOR_SIZE,
    LOCATOR_TAG,
    NO_TIME,
    PREFIX,
    PRINCIPAL_VERSION,
    SECTION_HEAD,
    Checkpoint,
    Corrupt,
    FrameInfo,
    PackageFooter,
    PackageHeader,
    check_index,
    decode_footer,
    decode_header,
    open_section,
    section,
)

# A verified frame: each record's decoded fields, its canonical bytes, its chain hash.
FrameRecords = tuple[list[list[Any]], list[bytes], list[bytes]]

MAX_FRAME_BYTES = 256 << 20  # a reader refuses a frame declaring more (the writer cuts at 64)
FRAME_BYTES = 64 << 20  # the writer closes a frame at this many bytes of records, if not before


class PackageWriter:
    """Streams events into a new temporary file beside `path`, linked to `path` by finish().

    The temporary file has a unique name, is created exclusively (O_EXCL) without following a
    link (O_NOFOLLOW: a planted symlink cannot redirect the write), mode 0600 (packages hold
    personal data), and is removed again on any failure. finish() fsyncs it, then links it to
    `path` without replacing anything there, then fsyncs the directory.

    Memory is one frame of records plus the index (~400 bytes a frame). add() checks only
    that seq is gapless and time never decreases; the reader recomputes the whole chain.
    """

    def __init__(self, path: str | os.PathLike[str], header: PackageHeader, *,
                 frame_events: int = 4096, level: int = 3) -> None:
        header_body = msgpack.packb(astuple(header)[1:])
        try:  # refuse now what a reader would refuse later
            decode_header(header_body)
        except Corrupt as exc:
            raise ValueError(f"{path}: {exc}") from None
        if frame_events < 1 or header.format_version not in FORMAT_VERSIONS:
            raise ValueError(f"frame_events must be >= 1, format_version one of "
                             f"{FORMAT_VERSIONS}")
        self.path = os.fspath(path)
        # The version is the writer's to declare (by the records added): see finish().
        self.header = replace(header, format_version=BASE_VERSION)
        self._header_body = header_body
        self._frame_bytes = 0
        self._frame_events = frame_events
        # One frame per compress() call, each with content size and a checksum, so `zstd -t`
        # checks every frame and a reader knows each frame's size before decompressing.
        self._compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True)
        self._records: list[bytes] = []
        self._principals = False  # a record with a principal was added
        self._frames: list[FrameInfo] = []
        self._checkpoints: list[Checkpoint] = []
        self._next_seq = header.base_seq + 1  # -1 once done, so add() fails its seq check
        self._done = False  # finished or aborted
        self._head_hash = header.base_hash
        self._last_time = NO_TIME
        self._frame_first_time = NO_TIME
        self._offset = 0
        try:
            self._file, self._partial = new_files.create_beside(self.path)
        except OSError as exc:
            raise PackageError(f"{self.path}: cannot create ({exc.strerror})") from None
        self._write(section(HEADER_MAGIC, HEADER_TAG, header_body, BASE_VERSION))
        self._data_start = self._offset

    def __enter__(self) -> PackageWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._done:
            self.abort()
            raise RuntimeError(f"{self.path}: PackageWriter left without finish(); discarded")

    def add(self, seq: int, recorded_at: int, record: bytes, event_hash: bytes) -> None:
        if seq != self._next_seq or recorded_at < self._last_time:
            self._refuse(seq, recorded_at)
        records = self._records
        if not self._principals and record[:1] == ELEVEN_ELEMENTS:
            # A principal: 0.1 cannot read it, say so. Once: `replace` on every record was a
            # third of a snapshot's time.
            self._principals = True
            self.header = replace(self.header, format_version=PRINCIPAL_VERSION)
        if not records:
            self._frame_first_time = recorded_at
        records.append(record)
        self._frame_bytes += len(record)
        self._next_seq = seq + 1
        self._last_time = recorded_at
        self._head_hash = event_hash
        if len(records) >= self._frame_events or self._frame_bytes >= FRAME_BYTES:
            self._flush_frame()

    def room(self) -> int:
        """How many more events the open frame takes before it is closed (add_run's limit)."""
        return self._frame_events - len(self._records)

    def add_run(self, first_seq: int, times: Sequence[int], records: Sequence[bytes],
                hashes: Sequence[bytes]) -> None:
        """add() for consecutive events from `first_seq` that fit in the open frame (at most
        `room()` of them), each with its time and chain hash: the same checks and the same
        package, without a call per event (a snapshot's inner loop)."""
        count = len(records)
        if not count:
            return
        if count > self.room() or len(times) != count or len(hashes) != count:
            raise ValueError(f"{self.path}: add_run takes at most room() events, each with "
                             "its time and hash")
        if first_seq != self._next_seq or times[0] < self._last_time or \
                not all(map(operator.le, times, itertools.islice(times, 1, None))):
            for seq, recorded_at in enumerate(times, first_seq):  # find the one to refuse
                self.add(seq, recorded_at, records[seq - first_seq], hashes[seq - first_seq])
            return  # not reached: one of them was refused
        size = sum(map(len, records))
        if self._frame_bytes + size >= FRAME_BYTES:  # long records: close the frame in time
            for seq, (recorded_at, record, event_hash) in enumerate(
                    zip(times, records, hashes, strict=True), first_seq):
                self.add(seq, recorded_at, record, event_hash)
            return
        if not self._principals and any(record[:1] == ELEVEN_ELEMENTS for record in records):
            self._principals = True
            self.header = replace(self.header, format_version=PRINCIPAL_VERSION)
        if not self._records:
            self._frame_first_time = times[0]
        self._records.extend(records)
        self._frame_bytes += size
        self._next_seq = first_seq + count
        self._last_time = times[-1]
        self._head_hash = hashes[-1]
        if len(self._records) >= self._frame_events:
            self._flush_frame()

    def checkpoint(self, counts: dict[str, int], state_digest: str | None = None) -> None:
        self._check_open()
        seq = self._next_seq - 1
        if seq <= self.header.base_seq or (self._checkpoints and self._checkpoints[-1].seq == seq):
            raise ValueError(f"{self.path}: a checkpoint needs a new event since the last one")
        self._flush_frame()  # checkpoints sit on frame boundaries: verifiable without a tail
        self._checkpoints.append(
            Checkpoint(seq, self._last_time, self._head_hash, dict(counts), state_digest))

    def finish(self, counts: dict[str, int], state_digest: str,
               schema: bytes | None = None) -> PackageFooter:
        self._check_open()
        self._flush_frame()
        frames = tuple(self._frames)
        head_seq = self._next_seq - 1
        footer = PackageFooter(
            head_seq, self._head_hash, frames[0].first_time if frames else None,
            frames[-1].last_time if frames else None, head_seq - self.header.base_seq,
            dict(counts), state_digest, tuple(self._checkpoints), frames, schema)
        fields = astuple(footer)
        footer_body = msgpack.packb(fields if schema is not None else fields[:-1])
        try:  # the writer's own output must pass the reader's checks (counts, digests, types)
            check_index(self.header, decode_footer(footer_body), self._data_start, self._offset)
        except Corrupt as exc:
            self.abort()
            raise ValueError(f"{self.path}: {exc}") from None
        version = self.header.format_version
        if version != BASE_VERSION:  # the header went out first; only its version changes
            self._rewrite_header(version)
        footer_frame = section(FOOTER_MAGIC, FOOTER_TAG, footer_body, version)
        self._write(footer_frame)
        self._write(section(LOCATOR_MAGIC, LOCATOR_TAG,
                             LOCATOR_BODY.pack(self._offset - len(footer_frame),
                                                len(footer_frame)), version))
        try:
            # Data, then the name, then the directory: the real name never shows a half package.
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            new_files.link_new(self._partial, self.path)
        except OSError as exc:
            self.abort()
            if exc.errno == errno.EEXIST:
                raise PackageError(f"{self.path} exists already; choose another name or remove "
                                   "it first (nothing was written)") from None
            raise PackageError(f"{self.path}: cannot write package ({exc.strerror}); "
                               "nothing was written") from None
        self._next_seq, self._done = -1, True
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._partial)
        new_files.fsync_directory(self.path)
        return footer

    def abort(self) -> None:
        """Discard the partial file (no-op once finished)."""
        if self._done:
            return
        self._next_seq, self._done = -1, True
        with contextlib.suppress(OSError):  # closing flushes: a full disk fails here too
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._partial)

    def _check_open(self) -> None:
        if self._done:
            raise ValueError(f"{self.path}: package already finished or aborted")

    def _refuse(self, seq: int, recorded_at: int) -> None:  # off the hot path
        self._check_open()
        if seq != self._next_seq:
            raise PackageError(f"{self.path}: seq {seq} given where seq {self._next_seq} is due "
                               "(package events must be gapless and in order)")
        raise PackageError(f"{self.path}: seq {seq} recorded_at {recorded_at} is before the "
                           f"previous event's {self._last_time}")

    def _flush_frame(self) -> None:
        records = self._records
        if not records:
            return
        compressed = self._compressor.compress(b"".join(records))
        last_seq = self._next_seq - 1
        self._frames.append(FrameInfo(
            self._offset, len(compressed), last_seq - len(records) + 1, last_seq,
            self._frame_first_time, self._last_time, len(records),
            hashlib.sha256(compressed).digest(), self._head_hash))
        self._records = []
        self._frame_bytes = 0
        self._write(compressed)

    def _rewrite_header(self, version: int) -> None:
        """The header frame again, at offset 0, declaring `version` (same length)."""
        try:
            self._file.flush()
            self._file.seek(0)
            self._file.write(section(HEADER_MAGIC, HEADER_TAG, self._header_body, version))
            self._file.seek(self._offset)
        except OSError as exc:
            self.abort()
            raise PackageError(f"{self.path}: cannot write package ({exc.strerror}); "
                               "nothing was written") from None

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise PackageError(f"{self.path}: cannot write package ({exc.strerror}); "
                               "nothing was written") from None
        self._offset += len(data)


class PackageReader:
    """Opens a package, verifying locator, footer, header and frame index at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._decompressor = zstandard.ZstdDecompressor()
        try:
            self.header, self.footer = self._load()
        except Corrupt as exc:
            raise PackageError(f"{self.path}: {exc}") from None

    def _load(self) -> tuple[PackageHeader, PackageFooter]:
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise Corrupt("no such file") from None
        except OSError as exc:
            raise Corrupt(f"cannot read ({exc.strerror})") from None
        if stat.S_ISDIR(mode):
            raise Corrupt("is a directory, not a package file")
        if not stat.S_ISREG(mode):
            raise Corrupt("is not a regular file")
        try:
            with open(self.path, "rb") as file:
                return self._read_metadata(file, os.fstat(file.fileno()).st_size)
        except OSError as exc:
            raise Corrupt(f"cannot read ({exc.strerror})") from None

    def _read_metadata(self, file: BinaryIO, size: int) -> tuple[PackageHeader, PackageFooter]:
        start = file.read(PREFIX)
        if len(start) < PREFIX:
            raise Corrupt("not an EventVault package (too short)")
        magic, header_size = FRAME_HEAD.unpack_from(start)
        tag, version = SECTION_HEAD.unpack_from(start, FRAME_HEAD.size)
        if magic != HEADER_MAGIC or tag != HEADER_TAG:
            raise Corrupt("not an EventVault package (no package header at the start)")
        if version > FORMAT_VERSION:  # before anything else: a newer layout may differ below
            raise Corrupt(f"unsupported format version {version} "
                           "(newer than this eventvault supports: upgrade eventvault)")
        if version not in FORMAT_VERSIONS:
            raise Corrupt(f"unsupported format version {version} (this reads "
                          f"{', '.join(map(str, FORMAT_VERSIONS))})")
        header_end = FRAME_HEAD.size + header_size
        file.seek(max(size - LOCATOR_SIZE, 0))
        locator = file.read(LOCATOR_SIZE)
        if size < header_end + LOCATOR_SIZE or locator[:PREFIX] != FRAME_HEAD.pack(
                LOCATOR_MAGIC, LOCATOR_SIZE - FRAME_HEAD.size) + SECTION_HEAD.pack(
                LOCATOR_TAG, version):
            raise Corrupt("truncated: no package end locator at the end of the file "
                           "(cut short, or still being written)")
        footer_at, footer_length = LOCATOR_BODY.unpack(
            open_section(locator, LOCATOR_MAGIC, LOCATOR_TAG, "locator", version))
        if footer_at < header_end or footer_at + footer_length != size - LOCATOR_SIZE:
            raise Corrupt("locator does not point at a footer")
        file.seek(footer_at)
        footer = decode_footer(open_section(
            file.read(footer_length), FOOTER_MAGIC, FOOTER_TAG, "footer", version))
        file.seek(0)
        header = decode_header(open_section(
            file.read(header_end), HEADER_MAGIC, HEADER_TAG, "header", version), version)
        check_index(header, footer, header_end, footer_at)
        return header, footer

    def check_frames(self) -> None:
        """Every event frame's checksum, nothing decompressed: a cheap look at the whole file
        (a replay does it before it touches its target)."""
        for _where, _info, _compressed in self._compressed_frames():
            pass

    def _compressed_frames(self) -> Iterator[tuple[str, FrameInfo, bytes]]:
        try:
            file = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise PackageError(f"{self.path}: cannot read ({exc.strerror})") from None
        with file:
            for number, info in enumerate(self.footer.frames, 1):
                where = f"{self.path}: frame {number} (seq {info.first_seq}-{info.last_seq})"
                try:
                    file.seek(info.offset)
                    compressed = file.read(info.length)
                except OSError as exc:
                    raise PackageError(f"{where}: cannot read ({exc.strerror})") from None
                if hashlib.sha256(compressed).digest() != info.checksum:
                    raise PackageError(f"{where}: checksum mismatch (the file is damaged)")
                yield where, info, compressed

    def frames(self) -> Iterator[tuple[FrameInfo, bytes]]:
        """Each event frame's decompressed records, in order, checksum verified first."""
        for where, info, compressed in self._compressed_frames():
            # The size a frame declares bounds what it may decompress to (zstd refuses a
            # frame that runs past it): a small crafted frame must not make us allocate GBs.
            try:
                declared = zstandard.frame_content_size(compressed)
            except zstandard.ZstdError as exc:
                raise PackageError(f"{where}: cannot decompress ({exc})") from None
            if declared < 0 or declared > MAX_FRAME_BYTES:
                size = "no size" if declared < 0 else f"{declared} bytes"
                raise PackageError(f"{where}: declares {size} of records (at most "
                                   f"{MAX_FRAME_BYTES} accepted); refused unread")
            # A decompressobj stops at the end of one frame and says whether it got there;
            # ZstdDecompressor.decompress() would silently ignore anything after it.
            reader = self._decompressor.decompressobj()
            try:
                data = reader.decompress(compressed)
            except zstandard.ZstdError as exc:
                raise PackageError(f"{where}: cannot decompress ({exc})") from None
            if not reader.eof or reader.unused_data:
                raise PackageError(f"{where}: not exactly one complete zstd frame")
            yield info, data

    def events(self, stop_seq: int | None = None) -> Iterator[Event]:
        """Events in seq order, each frame fully verified before any of its events is yielded.

        With stop_seq, stops after that seq; frames beyond the one holding it are not read.
        """
        for event, _record in self.entries(stop_seq):
            yield event

    def entries(self, stop_seq: int | None = None) -> Iterator[tuple[Event, bytes]]:
        """Like `events`, each event with its canonical record bytes (replay stores them)."""
        for batch in self.frame_entries(stop_seq):
            yield from batch

    def frame_entries(self, stop_seq: int | None = None) -> Iterator[list[tuple[Event, bytes]]]:
        """Like `entries`, a verified frame's entries at a time."""
        for fields, records, hashes in self.frame_records(stop_seq):
            yield [(Event(*item, event_hash) if len(item) == 10
                    else Event(*item[:10], event_hash, item[10]), record)
                   for item, record, event_hash in zip(fields, records, hashes, strict=True)]

    def frame_records(self, stop_seq: int | None = None) -> Iterator[FrameRecords]:
        """A verified frame at a time as three lists: each record's decoded fields (the
        canonical array, in `Event`'s field order, principal last where there is one), its
        bytes, and its chain hash. A replay's loop: no `Event` and no tuple built per record."""
        if stop_seq is not None and stop_seq <= self.header.base_seq:
            return
        previous = self.header.base_hash
        for number, (info, data) in enumerate(self.frames(), 1):
            fields, records, hashes = self._verify_frame(number, info, data, previous)
            previous = info.end_hash
            if stop_seq is not None and stop_seq <= info.last_seq:
                end = stop_seq - info.first_seq + 1
                yield fields[:end], records[:end], hashes[:end]
                return
            yield fields, records, hashes
        if previous != self.footer.head_hash:  # also checked at open; kept as the last word
            raise PackageError(f"{self.path}: head hash mismatch")

    def _verify_frame(self, number: int, info: FrameInfo, data: bytes,
                      previous: bytes) -> FrameRecords:
        where = f"{self.path}: frame {number} (seq {info.first_seq}-{info.last_seq})"
        fields: list[list[Any]] = []
        records: list[bytes] = []
        hashes: list[bytes] = []
        seq, time, start = info.first_seq - 1, info.first_time, 0
        sha256, add_fields, add_record, add_hash = (
            hashlib.sha256, fields.append, records.append, hashes.append)
        # events.iter_records and event_from_record, inlined: this loop runs once per event
        # of a replay, and a generator step, a call and an Event each cost more than a check.
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(data), 1024))
        unpacker.feed(data)
        try:
            for item in unpacker:
                end = unpacker.tell()
                record = data[start:end]
                start = end
                previous = sha256(previous + record).digest()  # events.chain_hash, inlined
                if type(item) is not list:
                    raise ValueError("record is not a 10- or 11-element array of the right "
                                     "types")
                if len(item) == 11:
                    if tuple(map(type, item[:10])) not in RECORD_TYPES or not is_principal(
                            item[10]):
                        raise ValueError("record is not a 10- or 11-element array of the "
                                         "right types")
                elif tuple(map(type, item)) not in RECORD_TYPES:
                    raise ValueError("record is not a 10- or 11-element array of the right "
                                     "types")
                seq += 1
                if item[0] != seq:
                    raise Corrupt(f"seq {item[0]} found where seq {seq} is due")
                if item[8] < time:
                    raise Corrupt(f"recorded_at goes back in time at seq {seq}")
                time = item[8]
                add_fields(item)
                add_record(record)
                add_hash(previous)
        except Corrupt as exc:
            raise PackageError(f"{where}: {exc}") from None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise PackageError(f"{where}: malformed record after seq {seq} ({exc})") from None
        if start != len(data):  # Unpacker stops silently before an incomplete record
            raise PackageError(f"{where}: incomplete record after seq {seq}")
        if len(fields) != info.count:
            raise PackageError(f"{where}: holds {len(fields)} records, the index says "
                               f"{info.count}")
        if fields[0][8] != info.first_time or time != info.last_time:
            raise PackageError(f"{where}: event times do not match the frame index")
        if previous != info.end_hash:
            raise PackageError(f"{where}: chain hash mismatch at seq {seq}")
        return fields, records, hashes


def open_chain(paths: Sequence[str | os.PathLike[str]]) -> list[PackageReader]:
    """Open a full package and its increments, checking each continues the one before."""
    if not paths:
        raise UsageError("no package given")
    readers = [PackageReader(path) for path in paths]
    first = readers[0]
    if first.header.base_seq != 0:
        raise PackageError(f"{first.path} is an incremental package (continues seq "
                           f"{first.header.base_seq}); give its base package first")
    last_time = NO_TIME if first.footer.last_time is None else first.footer.last_time
    for before, after in pairwise(readers):
        base_seq, head_seq = after.header.base_seq, before.footer.head_seq
        if base_seq != head_seq:
            raise PackageError(f"{after.path} continues seq {base_seq} but {before.path} ends "
                               f"at seq {head_seq}: an increment is missing or out of order")
        if after.header.base_hash != before.footer.head_hash:
            raise PackageError(
                f"{after.path} continues seq {base_seq} from hash "
                f"{after.header.base_hash.hex()[:16]} but {before.path} ends with hash "
                f"{before.footer.head_hash.hex()[:16]}: they are not the same chain")
        if after.footer.first_time is not None and after.footer.first_time < last_time:
            raise PackageError(f"{after.path} starts before {before.path}'s last event")
        if after.footer.last_time is not None:
            last_time = after.footer.last_time
    return readers
