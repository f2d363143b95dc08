"""A real PostgreSQL frozen (SIGSTOP) or stopped under the real binary: prompt 503s
with Retry-After, ``_health`` answers at once, and service comes back by itself."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from coves.db.embedded import EmbeddedPostgres, stop_blocking
from tests.support.process import serving

READ = "/xrpc/social.coves.community.list"


@pytest.fixture
def own_postgres(
    server_dir: Path,
) -> Iterator[tuple[EmbeddedPostgres, list[subprocess.Popen[bytes]]]]:
    """A PostgreSQL of this test's own, since the test freezes and stops it."""
    server = EmbeddedPostgres(server_dir / "pg", durable=False)
    procs = [server.start_blocking()]
    try:
        yield server, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                signal_cluster(proc.pid, signal.SIGCONT)
                stop_blocking(proc)


def signal_cluster(postmaster: int, signum: int) -> None:
    """Every process of the cluster: backends leave the postmaster's process group."""
    root = psutil.Process(postmaster)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signum)


def timed_get(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.get(url, timeout=30)
    return response, time.monotonic() - started


def wait_status(url: str, status: int, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if httpx.get(url, timeout=5).status_code == status:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {within}s")


def assert_prompt_503(base: str) -> None:
    for path in (READ, "/xrpc/_health", "/.well-known/did.json"):
        response, took = timed_get(base + path)
        assert response.status_code == 503, (path, response.text)
        assert took < 2.5, f"{path} took {took:.1f}s"
        if path != "/xrpc/_health":
            assert response.json()["error"] == "NotEnoughResources"
            assert int(response.headers["retry-after"]) > 0
        else:
            assert response.json()["database"]["reachable"] is False


def test_frozen_database_gets_prompt_503s_and_recovers(
    server_dir: Path, own_postgres: tuple[EmbeddedPostgres, list[subprocess.Popen[bytes]]]
) -> None:
    pg, procs = own_postgres
    with serving(server_dir, DATABASE_URL=pg.conninfo(), RESPONSE_CACHE_SECONDS="0") as (
        _proc,
        base,
    ):
        assert httpx.get(base + READ, timeout=10).status_code == 200
        signal_cluster(procs[0].pid, signal.SIGSTOP)  # postmaster and every backend
        try:
            time.sleep(0.2)
            hung = timed_get(base + READ)  # in flight as the freeze is noticed
            assert hung[0].status_code == 503 and hung[1] < 3.0, hung
            assert_prompt_503(base)
        finally:
            signal_cluster(procs[0].pid, signal.SIGCONT)
        assert wait_status(base + READ, 200, within=10) < 10
        assert httpx.get(base + "/xrpc/_health", timeout=5).status_code == 200


def test_stopped_database_gets_prompt_503s_and_recovers_when_restarted(
    server_dir: Path, own_postgres: tuple[EmbeddedPostgres, list[subprocess.Popen[bytes]]]
) -> None:
    pg, procs = own_postgres
    with serving(server_dir, DATABASE_URL=pg.conninfo(), RESPONSE_CACHE_SECONDS="0") as (
        _proc,
        base,
    ):
        assert httpx.get(base + READ, timeout=10).status_code == 200
        stop_blocking(procs[0])
        wait_status(base + "/xrpc/_health", 503, within=3)
        assert_prompt_503(base)
        procs.append(pg.start_blocking())
        assert wait_status(base + READ, 200, within=15) < 15
        assert httpx.get(base + "/xrpc/_health", timeout=5).status_code == 200
