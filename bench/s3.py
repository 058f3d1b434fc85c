"""Snapshot and replay throughput to and from an S3 server (moto, on 127.0.0.1), beside the
same operations on local files.

    python bench/s3.py --events 200000 [--vault PATH] [--workdir DIR] [--output FILE]

Every operation runs as its own `eventvault` process; its wall time and CPU time (user +
system of the eventvault process, and separately of the S3 server process) and the load
average before it are reported. The S3 server is `moto_server` (moto[server], a dev
dependency), started on a free 127.0.0.1 port: it is an emulator written in Python, so the
figures bound what the client side costs, not what a real object store would deliver.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_of(pid: int) -> float:
    """User + system seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return server, endpoint
        except OSError as error:
            if getattr(error, "code", None):
                return server, endpoint
            time.sleep(0.2)
    server.kill()
    raise SystemExit("moto_server did not start")


def run(name: str, args: list[str], env: dict[str, str], server: int | None,
        events: int) -> dict[str, object]:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_of(server) if server else 0.0
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "eventvault"), *args], env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    figure = {"name": name, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
              "server_cpu_s": round(cpu_of(server) - server_before, 2) if server else None,
              "events_per_s": round(events / wall), "load_avg_1m_before": round(load, 2)}
    print(f"{name:<36} {wall:7.2f} s wall {cpu:7.2f} s cpu  "
          f"{figure['server_cpu_s'] if server else '-':>6} s server  "
          f"{figure['events_per_s']:>8} events/s  load {load:.2f}", flush=True)
    return figure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--vault", help="reuse this built vault (SQLite file)")
    parser.add_argument("--workdir")
    parser.add_argument("--output")
    options = parser.parse_args()
    work = Path(options.workdir or tempfile.mkdtemp(prefix="evbench-s3-"))
    work.mkdir(parents=True, exist_ok=True)
    vault = Path(options.vault) if options.vault else work / "vault.db"
    if not options.vault:
        from workload import build

        print(f"building a vault of {options.events} events...", file=sys.stderr, flush=True)
        build(f"sqlite:///{vault}", options.events, batch=1000, single=100, seed=6)
    db = f"sqlite:///{vault}"
    server, endpoint = start_moto()
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
           "EVENTVAULT_PASSPHRASE": "benchmark passphrase", "EVENTVAULT_DB": db}
    figures = []
    try:
        status = subprocess.run([str(BIN / "eventvault"), "status", "--json"], env=env,
                                capture_output=True, text=True, check=True)
        events = json.loads(status.stdout)["head_seq"]
        package = work / "local.evpkg"
        for path in (package, work / "sealed.evpkg"):
            path.unlink(missing_ok=True)

        def target(name: str) -> list[str]:
            (work / f"{name}.db").unlink(missing_ok=True)
            return ["--db", f"sqlite:///{work / name}.db"]

        figures.append(run("snapshot to a local file", ["snapshot", "-o", str(package)],
                           env, None, events))
        figures.append(run("replay from a local file", [*target("r1"), "replay",
                                                        str(package)], env, None, events))
        run("(repo init s3)", ["repo", "init", "s3://bench/plain"], env, server.pid, 1)
        run("(repo init s3 --encrypt)", ["repo", "init", "s3://bench/sealed", "--encrypt"],
            env, server.pid, 1)
        figures.append(run("snapshot --repo s3", ["snapshot", "--repo", "s3://bench/plain"],
                           env, server.pid, events))
        figures.append(run("replay --repo s3", [*target("r2"), "replay", "--repo",
                                                "s3://bench/plain"], env, server.pid, events))
        figures.append(run("snapshot --repo s3 (encrypted)", [
            "snapshot", "--repo", "s3://bench/sealed"], env, server.pid, events))
        figures.append(run("replay --repo s3 (encrypted)", [
            *target("r3"), "replay", "--repo", "s3://bench/sealed"], env, server.pid, events))
        figures.append(run("repo check s3 --read-data (encrypted)", [
            "repo", "check", "s3://bench/sealed", "--read-data"], env, server.pid, events))
    finally:
        server.terminate()
        server.wait()
    result = {"events": events, "package_bytes": package.stat().st_size, "figures": figures,
              "cpus": os.cpu_count()}
    print(f"{events} events, package {package.stat().st_size} bytes")
    if options.output:
        Path(options.output).write_text(json.dumps(result, indent=1))
    if not options.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
