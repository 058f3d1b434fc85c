"""Package files: round trips, the zstd CLI, chains of increments, and every way to damage one."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventvault.errors import PackageError
from eventvault.events import GENESIS_HASH, Event, chain_hash, encode_record, pack_payload
from eventvault.package import (
    BASE_VERSION,
    FORMAT_VERSION,
    PackageFooter,
    PackageHeader,
    PackageReader,
    PackageWriter,
    open_chain,
)

T0 = 1_764_000_000_000_000  # 2025-11-24, µs
ACTOR = str(uuid.uuid5(uuid.NAMESPACE_OID, "user:admin"))
ZSTD = shutil.which("zstd")


def make_events(n: int, *, after: Event | None = None, seed: int = 0) -> list[Event]:
    """A chain of `user` and `document` creations with realistic payloads."""
    rng = random.Random(seed)
    seq, previous = (after.seq, after.hash) if after else (0, GENESIS_HASH)
    users: list[str] = [ACTOR]
    events: list[Event] = []
    for _ in range(n):
        seq += 1
        entity_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if rng.random() < 0.3:
            entity_type, fields = "user", {
                "username": f"user{seq:06d}", "email": f"user{seq:06d}@example.org",
                "display_name": f"User {seq}", "role": rng.choice(["editor", "reviewer"]),
                "active": True,
            }
            users.append(entity_id)
        else:
            entity_type, fields = "document", {
                "title": f"Quarterly report {seq} for {rng.choice(['finance', 'legal', 'ops'])}",
                "author": rng.choice(users), "reviewer": rng.choice(users),
                "status": "draft", "pages": rng.randrange(1, 400),
            }
        recorded_at = T0 + (seq // 3) * 1_000  # runs of equal times are allowed
        payload = pack_payload(fields)
        record = encode_record(seq, entity_type, entity_id, 1, "created", 1, ACTOR,
                               None, recorded_at, payload)
        previous = chain_hash(previous, record)
        events.append(Event(seq, entity_type, entity_id, 1, "created", 1, ACTOR, None,
                            recorded_at, payload, previous))
    return events


def header_for(base: Event | None = None) -> PackageHeader:
    return PackageHeader(BASE_VERSION, "0001_initial", "vault-1",
                         base.seq if base else 0, base.hash if base else GENESIS_HASH, T0)


def write(path: Path, events: list[Event], *, base: Event | None = None,
          frame_events: int = 4096, checkpoint_every: int = 0) -> PackageFooter:
    with PackageWriter(path, header_for(base), frame_events=frame_events) as writer:
        for event in events:
            writer.add(event.seq, event.recorded_at, event.record(), event.hash)
            if checkpoint_every and event.seq % checkpoint_every == 0:
                writer.checkpoint({"user": event.seq}, f"{event.seq:064x}")
        return writer.finish({"user": 3, "document": 7}, "ab" * 32)


def q(path: Path) -> str:
    return re.escape(str(path))


def read_all(path: Path) -> list[Event]:
    return list(PackageReader(path).events())


@pytest.fixture(scope="module")
def many() -> list[Event]:
    return make_events(10_000)


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, list[Event]]:
    """Three frames of three events and a checkpoint: small enough to damage every byte."""
    events = make_events(9)
    path = tmp_path / "small.evpkg"
    write(path, events, frame_events=3, checkpoint_every=6)
    return path, events


# --- round trips ------------------------------------------------------------------------


def test_many_frame_round_trip_returns_every_event(tmp_path: Path, many: list[Event]) -> None:
    path = tmp_path / "full.evpkg"
    written = write(path, many, frame_events=128)
    reader = PackageReader(path)
    assert reader.header == header_for()
    assert reader.footer == written
    assert len(reader.footer.frames) == 79  # ceil(10_000 / 128)
    assert read_all(path) == many
    # The file is one zstd stream of the records, for any reader that crosses frames.
    with path.open("rb") as file:
        content = zstandard.ZstdDecompressor().stream_reader(file, read_across_frames=True).read()
    assert content == b"".join(event.record() for event in many)


@pytest.mark.skipif(ZSTD is None, reason="zstd command line tool not installed")
@pytest.mark.parametrize("count", [0, 1000])
def test_zstd_cli_accepts_package_and_yields_records(tmp_path: Path, count: int) -> None:
    events = make_events(count)
    path = tmp_path / "cli.evpkg"
    write(path, events, frame_events=100)
    subprocess.run([ZSTD, "-q", "-t", str(path)], check=True)
    out = subprocess.run([ZSTD, "-q", "-dc", str(path)], check=True, capture_output=True)
    assert out.stdout == b"".join(event.record() for event in events)


def test_minimal_reader_in_format_md_reads_a_package(tmp_path: Path, many: list[Event]) -> None:
    """docs/FORMAT.md's sketch of a reader runs, so the spec cannot drift from the code."""
    spec = (Path(__file__).parents[1] / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", spec, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "FORMAT.md", "exec"), namespace)
    path = tmp_path / "spec.evpkg"
    write(path, many[:3000], frame_events=100, checkpoint_every=1000)
    read = list(namespace["read_package"](path))
    assert [fields for fields, _ in read] == [msgpack.unpackb(e.record()) for e in many[:3000]]
    assert [chain for _, chain in read] == [e.hash for e in many[:3000]]


def test_checkpoints_and_frame_index_read_back(tmp_path: Path, many: list[Event]) -> None:
    path = tmp_path / "cp.evpkg"
    write(path, many[:2500], frame_events=300, checkpoint_every=1000)
    footer = PackageReader(path).footer
    assert [c.seq for c in footer.checkpoints] == [1000, 2000]
    for point in footer.checkpoints:
        assert point.chain_hash == many[point.seq - 1].hash
        assert point.recorded_at == many[point.seq - 1].recorded_at
        assert point.counts == {"user": point.seq} and point.state_digest == f"{point.seq:064x}"
    # A checkpoint closes its frame early, so it sits on a frame boundary.
    assert {1000, 2000} <= {frame.last_seq for frame in footer.frames}
    data = path.read_bytes()
    for frame in footer.frames:
        chunk = many[frame.first_seq - 1 : frame.last_seq]
        assert frame.count == len(chunk) <= 300
        assert (frame.first_time, frame.last_time) == (chunk[0].recorded_at, chunk[-1].recorded_at)
        assert frame.end_hash == chunk[-1].hash
        assert frame.checksum == hashlib.sha256(
            data[frame.offset : frame.offset + frame.length]).digest()
    assert (footer.head_seq, footer.head_hash, footer.event_count) == (2500, many[2499].hash, 2500)
    assert (footer.first_time, footer.last_time) == (many[0].recorded_at, many[2499].recorded_at)
    assert footer.counts == {"user": 3, "document": 7} and footer.state_digest == "ab" * 32


def test_empty_package_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.evpkg"
    footer = write(path, [])
    assert (footer.head_seq, footer.head_hash, footer.event_count) == (0, GENESIS_HASH, 0)
    assert footer.first_time is None and footer.frames == ()
    assert read_all(path) == []


def test_stop_seq_needs_only_the_frames_up_to_the_cut(tmp_path: Path, many: list[Event]) -> None:
    path = tmp_path / "pit.evpkg"
    write(path, many[:1000], frame_events=100)
    assert list(PackageReader(path).events(stop_seq=250)) == many[:250]
    assert list(PackageReader(path).events(stop_seq=0)) == []
    assert list(PackageReader(path).events(stop_seq=5000)) == many[:1000]
    frames = PackageReader(path).footer.frames
    data = bytearray(path.read_bytes())
    data[frames[5].offset + 10] ^= 0xFF  # damage frame 6 (seq 501-600)
    path.write_bytes(data)
    assert list(PackageReader(path).events(stop_seq=500)) == many[:500]
    with pytest.raises(PackageError, match=r"frame 6 \(seq 501-600\): checksum mismatch"):
        list(PackageReader(path).events(stop_seq=501))


# --- chains of increments ---------------------------------------------------------------


@pytest.fixture
def chain(tmp_path: Path) -> tuple[list[Path], list[Event]]:
    events = make_events(700)
    paths = [tmp_path / "full.evpkg", tmp_path / "inc1.evpkg", tmp_path / "inc2.evpkg"]
    write(paths[0], events[:300], frame_events=64)
    write(paths[1], events[300:500], base=events[299], frame_events=64)
    write(paths[2], events[500:], base=events[499], frame_events=64)
    return paths, events


def test_open_chain_reads_full_and_increments(chain: tuple[list[Path], list[Event]]) -> None:
    paths, events = chain
    readers = open_chain(paths)
    assert [event for reader in readers for event in reader.events()] == events
    assert readers[1].header.base_seq == 300 and readers[1].header.base_hash == events[299].hash


def test_open_chain_refuses_missing_or_reordered_increments(
        chain: tuple[list[Path], list[Event]]) -> None:
    (full, inc1, inc2), _ = chain
    with pytest.raises(PackageError, match=rf"^{q(inc2)} continues seq 500 but {q(full)} ends at "
                                           "seq 300: an increment is missing or out of order$"):
        open_chain([full, inc2])
    with pytest.raises(PackageError,
                       match=rf"{q(inc2)} continues seq 500 but {q(full)} ends at seq 300"):
        open_chain([full, inc2, inc1])
    with pytest.raises(PackageError,
                       match=rf"{q(inc1)} continues seq 300 but {q(inc1)} ends at seq 500"):
        open_chain([full, inc1, inc1])
    with pytest.raises(PackageError, match=rf"^{q(inc1)} is an incremental package \(continues "
                                           r"seq 300\); give its base package first$"):
        open_chain([inc1, inc2])


def test_open_chain_refuses_an_increment_of_another_chain(
        tmp_path: Path, chain: tuple[list[Path], list[Event]]) -> None:
    (full, _, _), _ = chain
    other = make_events(400, seed=7)
    stranger = tmp_path / "stranger.evpkg"
    write(stranger, other[300:], base=other[299])
    with pytest.raises(PackageError, match=f"{q(stranger)} continues seq 300 from hash .* but "
                                           f"{q(full)} ends with hash .*: they are not the "
                                           "same chain"):
        open_chain([full, stranger])


# --- damage -----------------------------------------------------------------------------


def refused(path: Path) -> bool:
    try:
        read_all(path)
    except PackageError:
        return True
    return False


def test_every_flipped_byte_is_refused(small: tuple[Path, list[Event]]) -> None:
    path, _ = small
    original = path.read_bytes()
    for position in range(len(original)):
        damaged = bytearray(original)
        damaged[position] ^= 0xFF
        path.write_bytes(damaged)
        assert refused(path), f"flipped byte {position} of {len(original)} went unnoticed"


def test_every_truncation_is_refused(small: tuple[Path, list[Event]]) -> None:
    path, _ = small
    original = path.read_bytes()
    for length in range(len(original)):
        path.write_bytes(original[:length])
        assert refused(path), f"truncation to {length} of {len(original)} bytes went unnoticed"


def test_damage_messages_name_the_file_and_the_part(tmp_path: Path, many: list[Event]) -> None:
    path = tmp_path / "msg.evpkg"
    write(path, many[:1000], frame_events=128)
    original = path.read_bytes()
    frames = PackageReader(path).footer.frames

    def damage(position: int) -> bytes:
        data = bytearray(original)
        data[position] ^= 0x01
        return bytes(data)

    cases = [
        (original[:-1], r"truncated: no package end locator"),
        (damage(30), r"header checksum mismatch"),
        (damage(frames[-1].offset + frames[-1].length + 30), r"footer checksum mismatch"),
        (damage(len(original) - 10), r"locator checksum mismatch"),
    ]
    for data, message in cases:
        path.write_bytes(data)
        with pytest.raises(PackageError, match=rf"^{q(path)}: {message}"):
            PackageReader(path)
    path.write_bytes(damage(frames[2].offset + 20))
    reader = PackageReader(path)  # frames are checked when read, not at open
    with pytest.raises(PackageError,
                       match=rf"^{q(path)}: frame 3 \(seq 257-384\): checksum mismatch"):
        list(reader.events())


def test_not_a_package(tmp_path: Path) -> None:
    junk = tmp_path / "junk.evpkg"
    junk.write_bytes(random.Random(1).randbytes(5000))
    empty = tmp_path / "empty.evpkg"
    empty.write_bytes(b"")
    plain_zstd = tmp_path / "plain.zst"
    plain_zstd.write_bytes(zstandard.ZstdCompressor().compress(b"hello" * 100))
    cases = [
        (tmp_path, "is a directory, not a package file"),
        (tmp_path / "missing.evpkg", "no such file"),
        (junk, r"not an EventVault package \(no package header at the start\)"),
        (empty, r"not an EventVault package \(too short\)"),
        (plain_zstd, r"not an EventVault package \(no package header at the start\)"),
    ]
    for path, message in cases:
        with pytest.raises(PackageError, match=f"^{re.escape(str(path))}: {message}$"):
            PackageReader(path)


# --- forgeries: checksums recomputed, written per docs/FORMAT.md ------------------------


def rebuild(path: Path, change: Callable[[list[Any], bytes], bytes] | None = None, *,
            header_change: Callable[[list[Any]], None] | None = None,
            header_version: int | None = None, footer_version: int | None = None,
            locator_shift: tuple[int, int] = (0, 0)) -> None:
    """Rewrite a package's metadata as docs/FORMAT.md specifies, checksums recomputed.

    `change(footer, event_region)` may edit the decoded footer array in place and returns the
    (possibly replaced) bytes between header and footer; `header_change` edits the header.
    """
    data = path.read_bytes()
    kept = struct.unpack_from("<I", data, 16)[0]  # the version the package declares
    header_version = kept if header_version is None else header_version
    footer_version = kept if footer_version is None else footer_version
    footer_at, footer_length = struct.unpack_from("<QQ", data[-68:], 20)
    header_end = 8 + struct.unpack_from("<I", data, 4)[0]
    header = msgpack.unpackb(data[20 : header_end - 32])
    footer = msgpack.unpackb(data[footer_at + 20 : footer_at + footer_length - 32])
    region = data[header_end:footer_at]
    if change:
        region = change(footer, region)
    if header_change:
        header_change(header)
    header_frame = section(0, b"EVPKGHDR", msgpack.packb(header), header_version)
    footer_frame = section(1, b"EVPKGFTR", msgpack.packb(footer), footer_version)
    locator_body = struct.pack("<QQ", len(header_frame) + len(region) + locator_shift[0],
                               len(footer_frame) + locator_shift[1])
    path.write_bytes(header_frame + region + footer_frame + section(2, b"EVPKGLOC", locator_body,
                                                                   header_version))


def section(nibble: int, tag: bytes, body: bytes, version: int = FORMAT_VERSION) -> bytes:
    content = tag + struct.pack("<I", version) + body
    content += hashlib.sha256(content).digest()
    return struct.pack("<II", 0x184D2A50 + nibble, len(content)) + content


def test_spec_rewrite_of_an_intact_package_reads_the_same(small: tuple[Path, list[Event]]) -> None:
    path, events = small
    before = path.read_bytes()
    rebuild(path)
    assert path.read_bytes() == before
    assert read_all(path) == events


def test_unsupported_format_version(small: tuple[Path, list[Event]]) -> None:
    path, _ = small
    rebuild(path, header_version=FORMAT_VERSION + 1, footer_version=FORMAT_VERSION + 1)
    with pytest.raises(PackageError, match=rf"unsupported format version {FORMAT_VERSION + 1} "
                                           r"\(newer than this "
                                           r"eventvault supports: upgrade eventvault\)$"):
        PackageReader(path)


def _set(path: tuple[int, ...], value: Any) -> Callable[[list[Any], bytes], bytes]:
    """A footer change setting footer[path...] = value (value may be a function of the old)."""
    def change(footer: list[Any], region: bytes) -> bytes:
        *parents, last = path
        target = footer
        for index in parents:
            target = target[index]
        target[last] = value(target[last]) if callable(value) else value
        return region
    return change


# Footer fields: 0 head_seq, 1 head_hash, 2 first_time, 3 last_time, 4 event_count, 5 counts,
# 6 state_digest, 7 checkpoints, 8 frames; frame entry: 0 offset, 1 length, 2 first_seq,
# 3 last_seq, 4 first_time, 5 last_time, 6 count, 7 checksum, 8 end_hash.
@pytest.mark.parametrize(("edit", "message"), [
    ({"change": _set((8, 1, 0), lambda v: v + 1)}, r"frame index is inconsistent \(frame 2 "),
    ({"change": _set((8, 1, 2), 5)}, r"frame 2 does not continue seq 3"),
    ({"change": _set((8, 1, 6), 2)}, r"frame 2 does not continue seq 3"),
    ({"change": _set((8, 1, 4), lambda v: v - 10**9)}, r"frame 2 goes back in time"),
    ({"change": _set((4,), 8)}, "footer does not match its frame index"),
    ({"change": _set((2,), None)}, "footer does not match its frame index"),
    ({"change": _set((7, 0, 0), 5)}, "checkpoint at seq 5 does not match the frame index"),
    ({"change": _set((7, 0, 2), bytes(32))}, "checkpoint at seq 6 does not match"),
    ({"change": _set((8, 0), [1, 2, 3])}, r"frame index is malformed"),
    ({"change": _set((5,), {"user": -1})}, r"footer is malformed"),
    ({"change": _set((8, 0, 7), True)}, r"frame index is malformed"),
    ({"header_change": lambda h: h.__setitem__(3, b"\x01" * 32)},
     r"header is malformed \(a full package must start at the genesis hash\)"),
    ({"header_change": lambda h: h.__setitem__(2, -1)}, r"header is malformed"),
    ({"header_change": lambda h: h.append(1)}, r"header is malformed"),
    ({"footer_version": 2}, "footer has format version 2"),
    ({"header_version": 0}, r"unsupported format version 0 \(this reads 1, 2\)"),
    ({"locator_shift": (-1, 0)}, "locator does not point at a footer"),
    ({"locator_shift": (0, 1)}, "locator does not point at a footer"),
    ({"locator_shift": (-1, 1)}, "footer frame is damaged"),
    ({"locator_shift": (1, -1)}, "footer frame is damaged"),
])
def test_forged_metadata_is_refused_at_open(
        small: tuple[Path, list[Event]], edit: dict[str, Any], message: str) -> None:
    path, _ = small
    rebuild(path, **edit)
    with pytest.raises(PackageError, match=rf"^{q(path)}: .*{message}"):
        PackageReader(path)


@pytest.mark.parametrize("also_last_end_hash", [False, True])
def test_reencoded_events_with_old_head_hash_are_refused(
        tmp_path: Path, many: list[Event], also_last_end_hash: bool) -> None:
    """A payload changed and everything recomputed except the head hash the world knows."""
    genuine = many[:1000]
    forged, previous = [], GENESIS_HASH
    for event in genuine:
        if event.seq == 500:
            edited = dict(event.fields, title="Quietly edited")
            event = event._replace(payload=pack_payload(edited))
        previous = chain_hash(previous, event.record())
        forged.append(event._replace(hash=previous))
    path = tmp_path / "forged.evpkg"
    write(path, forged, frame_events=128)
    assert read_all(path)[499].fields["title"] == "Quietly edited"  # a consistent forgery

    def keep_head_hash(footer: list[Any], region: bytes) -> bytes:
        footer[1] = genuine[-1].hash
        if also_last_end_hash:
            footer[8][-1][8] = genuine[-1].hash
        return region

    rebuild(path, keep_head_hash)
    message = r"chain hash mismatch at seq 1000" if also_last_end_hash else "does not match"
    with pytest.raises(PackageError, match=message):
        read_all(path)


def replace_frame(index: int, new: bytes) -> Callable[[list[Any], bytes], bytes]:
    """A footer change that swaps event frame `index` for `new`, index fixed up to match."""
    def change(footer: list[Any], region: bytes) -> bytes:
        frames = footer[8]
        start = frames[0][0]
        old = frames[index]
        region = (region[: old[0] - start] + new + region[old[0] - start + old[1] :])
        delta = len(new) - old[1]
        old[1], old[7] = len(new), hashlib.sha256(new).digest()
        for later in frames[index + 1 :]:
            later[0] += delta
        return region
    return change


def test_forged_frames_that_are_not_one_zstd_frame_are_refused(
        small: tuple[Path, list[Event]]) -> None:
    path, events = small
    original = path.read_bytes()
    frame = PackageReader(path).footer.frames[1]
    genuine = original[frame.offset : frame.offset + frame.length]
    extra = zstandard.ZstdCompressor().compress(events[0].record())
    for new, message in [
        (bytes(len(genuine)), "cannot decompress"),
        (genuine + extra, "not exactly one complete zstd frame"),  # decompress() would hide it
        (genuine[:-6], "cannot decompress|not exactly one"),
    ]:
        path.write_bytes(original)
        rebuild(path, replace_frame(1, new))
        reader = PackageReader(path)
        with pytest.raises(PackageError, match=rf"frame 2 \(seq 4-6\): ({message})"):
            list(reader.events())


def _record(seq: int = 4, at: int = 0) -> bytes:
    return encode_record(seq, "user", "x", 1, "created", 1, ACTOR, None, at, b"\x80")


@pytest.mark.parametrize(("forge", "message"), [
    (lambda t: msgpack.packb([4, "user"]), "malformed record after seq 3"),
    (lambda t: msgpack.packb([4, "user", "x", 1, "created", 1, ACTOR, None, t, "str"]),
     "malformed record after seq 3"),
    (lambda t: msgpack.packb({"seq": 4}), "malformed record after seq 3"),
    (lambda t: _record(seq=5, at=t), "seq 5 found where seq 4 is due"),
    (lambda t: _record(at=t - 2), "recorded_at goes back in time at seq 4"),
    (lambda t: _record(at=t + 1), "event times do not match the frame index"),
    (lambda t: _record(at=t)[:-1], "incomplete record after seq 3"),
    (lambda t: _record(at=t) + _record(seq=5, at=t)[:6], "incomplete record after seq 4"),
    (lambda t: _record(at=t) + _record(seq=5, at=t), "holds 3 records, the index says 2"),
    (lambda t: _record(at=t) + b"\xc1", "malformed record after seq 4"),
])
def test_forged_records_with_consistent_checksums_are_refused(
        tmp_path: Path, forge: Callable[[int], bytes], message: str) -> None:
    """The writer takes record bytes on trust; the reader decodes and checks every one."""
    events = make_events(3)
    at = events[-1].recorded_at + 1
    record = forge(at)
    path = tmp_path / "bad.evpkg"
    with PackageWriter(path, header_for(), frame_events=2) as writer:
        for event in events:
            writer.add(event.seq, event.recorded_at, event.record(), event.hash)
        writer.add(4, at, record, chain_hash(events[-1].hash, record))
        writer.finish({}, "00" * 32)
    reader = PackageReader(path)
    with pytest.raises(PackageError, match=rf"^{q(path)}: frame 2 \(seq 3-4\): {message}"):
        list(reader.events())


# --- hypothesis: anything malformed is a PackageError, nothing else -----------------------


_PACKAGE_EVENTS = make_events(12)


def _valid_package(directory: Path) -> bytes:
    path = directory / "valid.evpkg"
    if not path.exists():
        write(path, _PACKAGE_EVENTS, frame_events=4, checkpoint_every=8)
    return path.read_bytes()


def _outcome(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        events = read_all(path)
    except PackageError as exc:
        assert "\n" not in str(exc)
        return
    assert events == _PACKAGE_EVENTS


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=2048),
    # Past the magic check, so the parsing behind it gets exercised too.
    st.binary(max_size=2048).map(lambda b: struct.pack("<II", 0x184D2A50, len(b)) + b),
))
def test_random_bytes_are_refused_cleanly(tmp_path: Path, data: bytes) -> None:
    _outcome(tmp_path / "random.evpkg", data)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255),
                                st.sampled_from(["set", "insert", "delete"])),
                      min_size=1, max_size=6))
def test_mutated_packages_read_fully_or_raise_package_error(
        tmp_path: Path, edits: list[tuple[float, int, str]]) -> None:
    data = bytearray(_valid_package(tmp_path))
    for where, value, kind in edits:
        position = int(where * len(data))
        if kind == "set" and data:
            data[position] = value
        elif kind == "insert":
            data[position:position] = bytes([value])
        elif data:
            del data[position]
    _outcome(tmp_path / "mutated.evpkg", bytes(data))


# --- the writer -------------------------------------------------------------------------


def test_writer_writes_partial_then_renames(tmp_path: Path) -> None:
    events = make_events(10)
    path = tmp_path / "atomic.evpkg"
    with PackageWriter(path, header_for(), frame_events=4) as writer:
        for event in events:
            writer.add(event.seq, event.recorded_at, event.record(), event.hash)
        [partial] = tmp_path.iterdir()
        assert partial.name.startswith(".atomic.evpkg.") and partial.name.endswith(".partial")
        assert not path.exists()
        writer.finish({}, "00" * 32)
    assert list(tmp_path.iterdir()) == [path]
    assert path.stat().st_mode & 0o777 == 0o600  # packages hold personal data
    with pytest.raises(ValueError, match="already finished"):
        writer.add(11, T0, b"", b"")


def test_writer_checkpoint_needs_a_new_event(tmp_path: Path) -> None:
    events = make_events(2)
    with PackageWriter(tmp_path / "cp.evpkg", header_for()) as writer:
        with pytest.raises(ValueError, match="needs a new event"):
            writer.checkpoint({})
        writer.add(1, events[0].recorded_at, events[0].record(), events[0].hash)
        writer.checkpoint({"user": 1})
        with pytest.raises(ValueError, match="needs a new event"):
            writer.checkpoint({"user": 1})
        writer.finish({}, "00" * 32)


def test_writer_refuses_what_a_reader_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "bad.evpkg"
    with pytest.raises(ValueError, match="genesis hash"):
        PackageWriter(path, dataclasses.replace(header_for(), base_hash=b"\x01" * 32))
    with pytest.raises(ValueError, match="header is malformed"):
        PackageWriter(path, dataclasses.replace(header_for(), base_hash=b"short"))
    with pytest.raises(ValueError, match="footer is malformed"), \
            PackageWriter(path, header_for()) as writer:
        writer.finish({"user": -1}, "00" * 32)
    with pytest.raises(ValueError, match="checkpoint is malformed"), \
            PackageWriter(path, header_for()) as writer:
        event = make_events(1)[0]
        writer.add(1, event.recorded_at, event.record(), event.hash)
        writer.checkpoint({"user": 1}, 42)  # type: ignore[arg-type]
        writer.finish({}, "00" * 32)
    assert os.listdir(tmp_path) == []


def test_writer_discards_partial_on_error(tmp_path: Path) -> None:
    events = make_events(10)
    path = tmp_path / "crash.evpkg"
    with pytest.raises(KeyError), PackageWriter(path, header_for()) as writer:
        writer.add(1, events[0].recorded_at, events[0].record(), events[0].hash)
        raise KeyError("boom")
    with pytest.raises(RuntimeError, match="without finish"), PackageWriter(path, header_for()):
        pass
    with pytest.raises(PackageError, match="seq 3 given where seq 2 is due"), \
            PackageWriter(path, header_for()) as writer:
        writer.add(1, T0, events[0].record(), events[0].hash)
        writer.add(3, T0, events[2].record(), events[2].hash)
    with pytest.raises(PackageError, match="is before the previous event's"), \
            PackageWriter(path, header_for()) as writer:
        writer.add(1, T0, events[0].record(), events[0].hash)
        writer.add(2, T0 - 1, events[1].record(), events[1].hash)
    assert os.listdir(tmp_path) == []


def test_writer_follows_no_planted_link_and_replaces_no_file(tmp_path: Path) -> None:
    events = make_events(3)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "out.evpkg"
    # The old fixed temporary name, and every name a guesser could plant, point at the victim.
    os.symlink(victim, tmp_path / "out.evpkg.partial")
    write(path, events)
    assert victim.read_bytes() == b"precious"
    assert read_all(path) == events
    # An existing package (or a link where it should go) is never replaced.
    os.symlink(victim, tmp_path / "link.evpkg")
    for taken in (path, tmp_path / "link.evpkg"):
        before = sorted(os.listdir(tmp_path))
        with pytest.raises(PackageError, match="exists already"):
            write(taken, events)
        assert sorted(os.listdir(tmp_path)) == before
    assert victim.read_bytes() == b"precious" and read_all(path) == events


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_full_disk_leaves_no_file_and_one_error(tmp_path: Path, failing: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    events = make_events(50)
    path = tmp_path / "full.evpkg"

    def no_space(*_args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", no_space)
        with pytest.raises(PackageError, match="No space left on device"):
            write(path, events, frame_events=8)
    else:
        with pytest.raises(PackageError, match="No space left on device"), \
                PackageWriter(path, header_for(), frame_events=8) as writer:
            writer._file = _FullDisk(writer._file)  # the disk fills after the header
            for event in events:
                writer.add(event.seq, event.recorded_at, event.record(), event.hash)
            writer.finish({}, "00" * 32)
    assert os.listdir(tmp_path) == []


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, _data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def test_a_frame_that_inflates_to_gigabytes_is_refused_unread(small: tuple[Path, list[Event]]
                                                               ) -> None:
    import resource

    path, _ = small
    # 4 GiB of zeros in one zstd frame (~130 KB), compressed chunk by chunk, put in frame 2.
    compressor = zstandard.ZstdCompressor(level=1, write_content_size=True).compressobj(
        size=4 << 30)
    chunk = bytes(64 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    rebuild(path, replace_frame(1, bomb))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, a high-water mark
    with pytest.raises(PackageError, match=r"frame 2 \(seq 4-6\): declares 4294967296 bytes"):
        read_all(path)
    # The frame lying about its size is refused too, as soon as it runs past what it declared.
    lying = bomb[:6] + (100).to_bytes(8, "little") + bomb[14:]  # 8-byte content size field
    assert zstandard.frame_content_size(lying) == 100
    rebuild(path, replace_frame(1, lying))
    with pytest.raises(PackageError, match=r"frame 2 \(seq 4-6\): cannot decompress"):
        read_all(path)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 100 * 1024, f"peak memory grew by {grown} KiB"


def test_writer_memory_does_not_grow_with_events(tmp_path: Path) -> None:
    """200k events through one writer: peak traced memory stays near one frame's records."""
    count, frame_events = 200_000, 1024
    stem = b"\x9a" + b"x" * 40  # not canonical records: the writer does not look inside
    event_hash = bytes(32)
    writer = PackageWriter(tmp_path / "big.evpkg", header_for(), frame_events=frame_events)
    tracemalloc.start()
    try:
        for seq in range(1, count + 1):
            writer.add(seq, T0 + seq, stem + seq.to_bytes(8, "little"), event_hash)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(writer._records) < frame_events
    # Holding every record would be ~15 MB; one frame of records plus the index is < 1 MB.
    assert peak < 3_000_000, peak
    writer.finish({}, "00" * 32)


def test_a_run_of_records_writes_the_package_one_by_one_would(tmp_path: Path,
                                                               many: list[Event]) -> None:
    header = header_for()
    one_by_one, runs = tmp_path / "one.evpkg", tmp_path / "runs.evpkg"
    with PackageWriter(one_by_one, header, frame_events=100) as writer:
        for event in many:
            writer.add(event.seq, event.recorded_at, event.record(), event.hash)
        writer.finish({}, "00" * 32)
    with PackageWriter(runs, header, frame_events=100) as writer:
        at = 0
        while at < len(many):
            run = many[at:at + min(writer.room(), 37)]  # runs that cut frames unevenly
            writer.add_run(run[0].seq, [e.recorded_at for e in run],
                           [e.record() for e in run], [e.hash for e in run])
            at += len(run)
        writer.finish({}, "00" * 32)
    assert runs.read_bytes() == one_by_one.read_bytes()


def test_a_run_of_records_is_refused_as_add_would_refuse_it(tmp_path: Path) -> None:
    events = make_events(5)
    times = [e.recorded_at for e in events]
    records, hashes = [e.record() for e in events], [e.hash for e in events]
    with PackageWriter(tmp_path / "p.evpkg", header_for(), frame_events=4) as writer:
        with pytest.raises(ValueError, match="at most room"):
            writer.add_run(1, times, records, hashes)  # 5 records, a frame of 4
        with pytest.raises(PackageError, match="seq 2 given where seq 1 is due"):
            writer.add_run(2, times[:4], records[:4], hashes[:4])
        backwards = [times[0], times[0] - 1, *times[2:4]]
        with pytest.raises(PackageError, match="is before the previous event"):
            writer.add_run(1, backwards, records[:4], hashes[:4])
        writer.abort()
    assert os.listdir(tmp_path) == []
