"""SIGTERM on the real binary: idle keep-alive connections do not hold up the exit."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import TestPostgres
from tests.support.process import serving


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


@pytest.mark.parametrize("target", ["/xrpc/_health", "/xrpc/social.coves.nope", "/metrics"])
def test_sigterm_closes_idle_keep_alive_connections_at_once(
    server_dir: Path, database: str, target: str
) -> None:
    with serving(server_dir, DATABASE_URL=database, SHUTDOWN_GRACE_SECONDS="20") as (proc, base):
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
