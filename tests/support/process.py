"""Running the real ``coves`` binary in tests: ports, environment, readiness, output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

COVES = [sys.executable, "-m", "coves"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def coves_env(server_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COVES_", "DATABASE_", "ENCRYPTION_", "CURSOR_"))
    }
    env.update(
        {
            "COVES_DATA_DIR": str(server_dir / "data"),
            "JETSTREAM_ENABLED": "false",  # no network in tests
            "LOG_FORMAT": "json",
            **extra,
        }
    )
    return env


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"coves exited early with {proc.returncode}")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("coves did not become healthy")


def run_coves(
    server_dir: Path, *argv: str, timeout: float = 60.0, **env: str
) -> subprocess.CompletedProcess[str]:
    """A one-shot command (or a serve that is expected to exit by itself)."""
    return subprocess.run(
        [*COVES, *argv],
        env=coves_env(server_dir, **env),
        cwd=server_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def serving(
    server_dir: Path, *argv: str, port: int | None = None, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``coves serve`` until healthy; yields the process and its base URL; SIGTERM after."""
    port = port or free_port()
    log_path = server_dir / f"coves-{port}.log"
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(
            [*COVES, "serve", "--port", str(port), *argv],
            env=coves_env(server_dir, **env),
            cwd=server_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(f"{base}/xrpc/_health", proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{log_path.read_text()[-3000:]}") from None
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
