"""SIGTERM on the real binary, in both shapes (one process, and a supervisor with worker
processes): idle keep-alive connections do not hold up the exit, and a SIGTERM during
start-up stops Coves cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.database import TestPostgres
from tests.support.process import COVES, coves_env, free_port, serving

# The multi-process default (one worker per core, at least two here) and one process.
SHAPES = [
    pytest.param(["--workers", "2"], id="workers"),
    pytest.param(["--workers", "0"], id="single"),
]


@pytest.fixture
def database(pg: TestPostgres) -> Iterator[str]:
    name = pg.create_database()
    try:
        yield pg.conninfo(name)
    finally:
        pg.drop_database(name)


def keep_alive(port: int, target: str) -> socket.socket:
    """A connection that made one request and now sits idle, as a pooling proxy's does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    return sock


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("target", ["/xrpc/_health", "/xrpc/social.coves.nope", "/metrics"])
def test_sigterm_closes_idle_keep_alive_connections_at_once(
    server_dir: Path, database: str, target: str, shape: list[str]
) -> None:
    env = {"DATABASE_URL": database, "SHUTDOWN_GRACE_SECONDS": "20"}
    with serving(server_dir, *shape, **env) as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        idle = [keep_alive(port, target) for _ in range(3)]
        never_asked = socket.create_connection(("127.0.0.1", port), timeout=10)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        took = time.monotonic() - started
        for sock in [*idle, never_asked]:
            sock.close()
    assert code == 0
    assert took < 5, f"exit took {took:.1f}s with idle keep-alive connections (grace 20s)"


@pytest.mark.parametrize(
    ("shape", "starting"),
    [
        # The supervisor has started its ingesting process; the API workers are starting.
        pytest.param(["--workers", "2"], '"worker": "ingest"', id="workers"),
        pytest.param(["--workers", "0"], '"event": "embedded postgres ready"', id="single"),
    ],
)
def test_sigterm_during_start_up_stops_cleanly(
    server_dir: Path, shape: list[str], starting: str
) -> None:
    """A SIGTERM before Coves is done starting (a deploy aborted, a health check that saw
    the first worker answer) is a clean stop: exit 0, nothing left running."""
    log_path = server_dir / "coves.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*COVES, "serve", "--port", str(free_port()), *shape],
            env=coves_env(server_dir, SHUTDOWN_GRACE_SECONDS="5"),
            cwd=server_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while starting not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.02)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log_path.read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert not (server_dir / "data" / "postgres" / "postmaster.pid").exists()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive
