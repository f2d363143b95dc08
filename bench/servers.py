"""Start the servers a benchmark compares, each pinned to its own core.

The server side (and, for Coves, its embedded PostgreSQL, which inherits
the affinity) runs on core 0; the load generator runs on core 1, so the two
do not steal each other's CPU on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
CLIENT_CPU = 1 if (os.cpu_count() or 1) > 1 else 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(pid: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {SERVER_CPU})


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} never answered 200")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def hello_server() -> Iterator[str]:
    """Bare Hypercorn-trio serving a constant JSON body; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--bind",
         f"127.0.0.1:{port}", "bench.hello_app:app"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _pin(proc.pid)
    try:
        url = f"http://127.0.0.1:{port}/hello"
        _wait(url, proc)
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def coves_server(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Iterator[str]:
    """``coves serve`` on the embedded PostgreSQL; yields its base URL."""
    port = free_port()
    scratch = None
    if data_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="coves-bench-")
        data_dir = Path(scratch.name)
    full_env = {
        **os.environ,
        "COVES_DATA_DIR": str(data_dir),
        "JETSTREAM_ENABLED": "false",
        "RATE_LIMIT_GENERAL": "1000000000",
        "RATE_LIMIT_COMMENTS": "1000000000",
        "LOG_LEVEL": "warning",
        **(env or {}),
    }
    log = open(data_dir / "bench-server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "coves", "serve", "--port", str(port)],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    _pin(proc.pid)  # before it starts PostgreSQL, which inherits the affinity
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/xrpc/_health", proc)
        yield base
    finally:
        _stop(proc)
        log.close()
        if scratch is not None:
            scratch.cleanup()
