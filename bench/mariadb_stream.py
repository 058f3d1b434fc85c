"""Peak memory of a snapshot from MariaDB as the log grows: streamed (SSCursor) or buffered.

A one-off measurement, run by hand (not a timed test): for each size it writes a package
of that many events, replays it into a fresh MariaDB database, then snapshots that vault in a
fresh interpreter per mode, reporting the child's peak RSS (ru_maxrss), its RSS before the
snapshot, wall and CPU time. "buffered" is PyMySQL's default cursor (the code before the
change), "streamed" the SSCursor that storage/mariadb.py now uses. The floor of the same run
is a plain PyMySQL SSCursor read of the same columns, with no package written.

    python bench/mariadb_stream.py --events 50000 100000 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SERVER = os.environ.get("EVENTVAULT_BENCH_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
QUERY = "SELECT seq, recorded_at, entity_type, event_type, record, hash FROM events"


def write_package(path: Path, events: int) -> None:
    """Users, then documents by them: a valid history of `events` events."""
    import msgpack

    from eventvault.events import (
        GENESIS_HASH,
        chain_hash,
        encode_record,
        event_from_record,
        now_us,
        pack_payload,
    )
    from eventvault.fold import StateFold
    from eventvault.package import PackageHeader, PackageWriter

    users = max(2, events // 50)
    ids = [str(uuid.UUID(int=n + 1, version=4)) for n in range(users)]
    header = PackageHeader(1, "0001", str(uuid.uuid4()), 0, GENESIS_HASH, now_us())
    previous, at, fold = GENESIS_HASH, now_us(), StateFold()
    with PackageWriter(path, header) as writer:
        for seq in range(1, events + 1):
            n = seq - 1
            if n < users:
                kind, entity, fields = "user", ids[n], {
                    "username": f"user{n}" if n else "system",
                    "role": "author" if n else "admin", "active": True, "email": ""}
            else:
                kind, entity = "document", str(uuid.UUID(int=(1 << 64) + n, version=4))
                fields = {"title": f"Risk assessment Lyon 2024-Q3 (DOC-{n:07d})",
                          "author": ids[n % users], "status": "draft"}
            record = encode_record(seq, kind, entity, 1, "created", 1, ids[0], None, at + seq,
                                   pack_payload(fields))
            previous = chain_hash(previous, record)
            writer.add(seq, at + seq, record, previous)
            fold.apply(event_from_record(msgpack.unpackb(record), previous))
        writer.finish(dict(fold.counts), fold.digest())


def child(url: str, mode: str, output: str) -> None:
    """One measured snapshot (or the floor's plain read) in this fresh interpreter."""
    from eventvault.snapshot import snapshot
    from eventvault.storage import Storage
    from eventvault.storage.mariadb import MariaDBStorage
    from eventvault.vault import Vault

    if mode == "buffered":  # PyMySQL's default cursor, as before the change
        MariaDBStorage._streaming_cursor = Storage._streaming_cursor  # type: ignore[method-assign]
    vault = Vault(url)
    with vault.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    baseline = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic()
    if mode == "floor":
        from pymysql.cursors import SSCursor
        with vault.connect() as connection:
            cursor = connection.connection.driver_connection.cursor(SSCursor)
            cursor.execute(QUERY + " ORDER BY seq")
            while cursor.fetchmany(5000):
                pass
            cursor.close()
    else:
        snapshot(vault, Path(output))
    wall = time.monotonic() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    vault.close()
    print(json.dumps({
        "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "rss_before_mb": baseline,
        "rss_peak_mb": _status_mb("VmHWM"),
    }))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise LookupError(field)


def measure(url: str, mode: str, work: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", url, mode,
                           str(work / f"{mode}.evpkg")], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--child", nargs=3, metavar=("URL", "MODE", "OUTPUT"))
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from eventvault.replay import replay
    from eventvault.vault import Vault

    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    print("events   mode      wall_s  cpu_s  rss_before_mb  rss_peak_mb  load_avg_1m")
    for events in options.events:
        name = f"eventvault_bench_stream_{os.getpid()}_{events}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}`"))
        url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
        try:
            with tempfile.TemporaryDirectory(prefix="evbench-stream-") as scratch:
                work = Path(scratch)
                write_package(work / "source.evpkg", events)
                with Vault(url) as vault:
                    replay(vault, [work / "source.evpkg"])
                for mode in ("floor", "streamed", "buffered"):
                    figures = measure(url, mode, work)
                    print(f"{events:<8} {mode:<9} {figures['wall_s']:>6} {figures['cpu_s']:>6} "
                          f"{figures['rss_before_mb']:>14} {figures['rss_peak_mb']:>12} "
                          f"{os.getloadavg()[0]:>12.2f}", flush=True)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


if __name__ == "__main__":
    main()
