"""Floors: the least plain Python + sqlite3 needs for the same work as a replay or a snapshot.

`measure`, the floor of issue 6: the least plain `sqlite3` needs to write what a replay writes.

Read back from the source vault (not timed): every row of `events` (all its columns, bytes as
stored) and every row of the projection tables (the final state, with their IDs). Then, into a
fresh file with the source's schema (its DDL copied from sqlite_master) and the pragmas a replay
runs under (rollback journal instead of the WAL, 64 MiB page cache, synchronous=NORMAL, foreign
keys on: what `Vault.connect(bulk=True)` sets; measured 15-20 % faster than the WAL pragmas,
so the floor gets them too), one transaction: `executemany` of the events, `executemany` of
each projection table in dependency order, COMMIT. Two ways, both timed:
- `seconds` (the floor): the tables first without their unique constraints and indexes, which
  are built after the rows are in (the same unique indexes, as CREATE UNIQUE INDEX), then the
  triggers. Same rows, same indexes at the end, and the fastest plain way to get there;
- `indexed_seconds`: the schema exactly as the vault's, indexes maintained row by row.
- `append_seconds`, the append floor: the events alone, `batch` a transaction (COMMIT each),
  into the vault's schema, with the engine's everyday pragmas (WAL, synchronous=NORMAL, foreign
  keys on): what batched appends cost the database before any domain work.
The floor is the best of RUNS loads (a floor is a minimum; the machine is noisy). A replay
cannot write less than the floor; its time divided by the floor's is its overhead.

`measure_snapshot` is the least a verifying snapshot does, without the fold: read the events
with plain sqlite3, take (or, from a log of fields, re-encode) each canonical record, chain
SHA-256 over it, and compress frames of 4096 records with zstd (level 3). If this alone
cannot reach a snapshot target, no change inside the snapshot's Python code can either.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgpack
import zstandard

from eventvault.catalog import legacy

Result = dict[str, Any]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
FRAME_EVENTS = 4096
READ_BATCH = 5000
RUNS = 2  # the floor is the best of this many loads: on a noisy machine, a floor is a minimum
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON")
BULK_PRAGMAS = ("PRAGMA journal_mode = DELETE", "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON", "PRAGMA cache_size = -65536")


def measure(source: str, target: str, batch: int = 1000) -> Result:
    """`source`, `target`: SQLite file paths; `target` must not exist yet. `batch`: events per
    transaction for the append floor."""
    target_path = Path(target)
    if target_path.exists():
        raise FileExistsError(f"{target} exists; the floor needs a fresh file")
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading:
        schema = _schema(reading)
        event_columns = _columns(reading, "events")
        events = reading.execute(f"SELECT {', '.join(event_columns)} FROM events "
                                 "ORDER BY seq").fetchall()
        tables = [(t.table, _columns(reading, t.table)) for t in legacy().schema.types]
        state = {name: reading.execute(f"SELECT {', '.join(columns)} FROM {name} "
                                       "ORDER BY id").fetchall() for name, columns in tables}
    reading.close()
    runs = [_load(target, _deferred(schema), event_columns, events, tables, state)
            for _ in range(RUNS)]
    indexed = _load(target, (schema, []), event_columns, events, tables, state)
    append, append_cpu = _append(target, schema, event_columns, events, batch)
    return {
        "append_seconds": append,
        "append_cpu_seconds": append_cpu,
        "append_batch": batch,
        **min(runs, key=lambda run: run["seconds"]),
        "runs_seconds": [run["seconds"] for run in runs],
        **{f"indexed_{name}": value for name, value in indexed.items()},
        "events": len(events),
        "state_rows": sum(len(rows) for rows in state.values()),
        "pragmas": list(BULK_PRAGMAS),
        "append_pragmas": list(PRAGMAS),
    }


def measure_append(source: str, target: str, batch: int = 1000) -> Result:
    """The append floor alone (bench/append.py): every event of the vault at `source`, as
    `measure` reads and writes them, `batch` a transaction into a fresh `target`."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading:
        schema = _schema(reading)
        event_columns = _columns(reading, "events")
        events = reading.execute(f"SELECT {', '.join(event_columns)} FROM events "
                                 "ORDER BY seq").fetchall()
    reading.close()
    seconds, cpu_seconds = _append(target, schema, event_columns, events, batch)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "events": len(events)}


def _load(target: str, schema: tuple[list[str], list[str]], event_columns: list[str],
          events: list[tuple[object, ...]], tables: list[tuple[str, list[str]]],
          state: dict[str, list[tuple[object, ...]]]) -> Result:
    """One timed load into a fresh `target`: (DDL before the rows, DDL after them)."""
    before, after = schema
    writing = _fresh(target, BULK_PRAGMAS, before)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        writing.execute("BEGIN IMMEDIATE")
        writing.executemany(_insert("events", event_columns), events)
        events_done = time.perf_counter()
        for name, columns in tables:
            writing.executemany(_insert(name, columns), state[name])
        state_done = time.perf_counter()
        for statement in after:
            writing.execute(statement)
        writing.execute("COMMIT")
        finished, cpu_finished = time.perf_counter(), time.process_time()
    finally:
        writing.close()
        _remove(target)
    # CPU time (user + system of this process, the only one): the figure a loaded machine
    # does not inflate as it does wall time.
    return {"seconds": finished - started, "cpu_seconds": cpu_finished - cpu_started,
            "events_seconds": events_done - started,
            "state_seconds": state_done - events_done, "index_seconds": finished - state_done}


def _append(target: str, schema: list[str], event_columns: list[str],
            events: list[tuple[object, ...]], batch: int) -> tuple[float, float]:
    """The events alone, `batch` a transaction, into the vault's schema (indexes kept up):
    wall and CPU seconds."""
    writing = _fresh(target, PRAGMAS, schema)
    insert = _insert("events", event_columns)
    try:
        cpu_started = time.process_time()
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            writing.execute("BEGIN IMMEDIATE")
            writing.executemany(insert, events[start:start + batch])
            writing.execute("COMMIT")
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    finally:
        writing.close()
        _remove(target)
    return seconds, cpu_seconds


def _fresh(target: str, pragmas: tuple[str, ...], statements: list[str]) -> sqlite3.Connection:
    """A new database file with `pragmas` set and `statements` run (not timed), after the
    previous load's pages have reached the disk."""
    os.sync()
    writing = sqlite3.connect(target, isolation_level=None)
    for statement in (*pragmas, *statements):
        writing.execute(statement)
    return writing


def _remove(target: str) -> None:
    for leftover in (Path(target), Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)


_UNIQUE = re.compile(r",\s*CONSTRAINT (\w+) UNIQUE \(([^)]*)\)")
_TABLE = re.compile(r"CREATE TABLE \"?(\w+)\"?")


def _deferred(schema: list[str]) -> tuple[list[str], list[str]]:
    """The schema split in (tables without unique constraints, everything else after the
    rows: those constraints as unique indexes, the other indexes, the triggers)."""
    before: list[str] = []
    after: list[str] = []
    for statement in schema:
        table = _TABLE.match(statement)
        if table is None:
            after.append(statement)
            continue
        before.append(_UNIQUE.sub("", statement))
        after[:0] = [f"CREATE UNIQUE INDEX {name} ON {table[1]} ({columns})"
                     for name, columns in _UNIQUE.findall(statement)]
    return before, after


def measure_snapshot(source: str) -> Result:
    """`source`: a SQLite vault file, read only.

    A log that stores each event's canonical record (a `record` column) is read as it is; one
    that stores the fields and the payload has each record re-encoded first.
    """
    pack = msgpack.Packer(use_bin_type=True).pack
    sha256 = hashlib.sha256
    compress = zstandard.ZstdCompressor(level=3, write_checksum=True).compress
    decompress = zstandard.ZstdDecompressor().decompress
    previous, size, events, records = bytes(32), 0, 0, []
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading:
        stored_records = "record" in _columns(reading, "events")
        cpu_started = time.process_time()
        started = time.perf_counter()
        cursor = reading.execute(
            "SELECT seq, record, hash FROM events ORDER BY seq" if stored_records else
            "SELECT seq, entity_type, entity_id, entity_version, event_type, schema_version, "
            "actor_id, reason, recorded_at, payload, hash FROM events ORDER BY seq")
        read_seconds = 0.0
        while True:
            batch_started = time.perf_counter()
            rows = cursor.fetchmany(READ_BATCH)
            read_seconds += time.perf_counter() - batch_started
            if not rows:
                break
            for row in rows:
                if stored_records:
                    record = row[1]
                    if record[:4] == ZSTD_MAGIC:
                        record = decompress(record)
                else:
                    fields = list(row[:10])
                    if fields[9][:4] == ZSTD_MAGIC:  # a long payload stored compressed
                        fields[9] = decompress(fields[9])
                    record = pack(fields)
                previous = sha256(previous + record).digest()
                if previous != row[-1]:
                    raise ValueError(f"the chain does not verify at seq {row[0]}")
                records.append(record)
                if len(records) == FRAME_EVENTS:
                    size += len(compress(b"".join(records)))
                    records = []
            events += len(rows)
        if records:
            size += len(compress(b"".join(records)))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    reading.close()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "read_seconds": read_seconds,
            "events": events, "bytes": size, "stored_records": stored_records}


def _schema(connection: sqlite3.Connection) -> list[str]:
    """The source's DDL in creation order, without alembic's own bookkeeping table."""
    rows = connection.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
        "AND tbl_name != 'alembic_version' ORDER BY rowid"
    ).fetchall()
    return [sql for (sql,) in rows]


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]


def _insert(table: str, columns: list[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})")
