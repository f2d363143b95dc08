"""Who owns the embedded PostgreSQL: restart after kill -9, one data dir per Coves,
a port in use. Real binary, real PostgreSQL."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from coves.db.embedded import EmbeddedPostgres, stop_blocking
from tests.support.database import TestPostgres
from tests.support.process import free_port, run_coves, serving


def postmaster_pid(server_dir: Path) -> int:
    return int((server_dir / "data" / "postgres" / "postmaster.pid").read_text().split()[0])


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_restart_after_kill_9_just_works(server_dir: Path) -> None:
    with serving(server_dir) as (proc, base):
        old_postgres = postmaster_pid(server_dir)
        proc.kill()  # SIGKILL: no shutdown code runs
        proc.wait(timeout=10)
    # The orphan shuts itself down (parent-death signal) ...
    deadline = time.monotonic() + 15
    while not gone(old_postgres) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(old_postgres), "the embedded PostgreSQL outlived its owner"
    # ... and the next start simply works.
    with serving(server_dir) as (_proc, base):
        assert httpx.get(base + "/xrpc/_health", timeout=10).status_code == 200


def test_an_orphaned_server_is_taken_over(server_dir: Path) -> None:
    """A server whose owner is gone but which still runs (no parent-death signal
    reached it): the next Coves stops it and starts its own."""
    orphan = EmbeddedPostgres(server_dir / "data")
    orphan.prepare()
    proc = orphan.spawn()
    try:
        orphan.wait_ready(lambda: proc.poll() is None)
        orphan.unlock()  # its owner "died": the lock is free, the server runs on
        with serving(server_dir) as (_coves, base):
            assert proc.wait(timeout=5) is not None  # stopped by the new owner
            assert postmaster_pid(server_dir) != proc.pid
            assert httpx.get(base + "/xrpc/_health", timeout=10).status_code == 200
    finally:
        stop_blocking(proc)


def test_a_data_dir_owned_by_a_running_coves_fails_at_once_in_one_line(
    server_dir: Path,
) -> None:
    with serving(server_dir) as (owner, base):
        started = time.monotonic()
        second = run_coves(server_dir, "serve", "--port", str(free_port()), timeout=60)
        took = time.monotonic() - started
        output = second.stdout + second.stderr
        assert second.returncode == 2, output
        assert f"is in use by a running Coves (pid {owner.pid})" in output
        assert "Traceback" not in output and "restarting" not in output
        assert took < 15, took
        assert httpx.get(base + "/xrpc/_health", timeout=10).status_code == 200


@pytest.fixture
def database(pg: TestPostgres) -> Iterator[str]:
    name = pg.create_database()
    try:
        yield pg.conninfo(name)
    finally:
        pg.drop_database(name)


@pytest.mark.parametrize("workers", ["2", "0"], ids=["workers", "single"])
def test_a_port_in_use_fails_at_once_in_one_line(
    server_dir: Path, database: str, workers: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_coves(
            server_dir, "serve", "--port", str(port), "--workers", workers, DATABASE_URL=database
        )
        took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output and "restarting" not in output
    assert took < 15, took


def test_sigterm_still_stops_the_embedded_server_cleanly(server_dir: Path) -> None:
    with serving(server_dir) as (proc, _base):
        postgres = postmaster_pid(server_dir)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert gone(postgres)
    assert not (server_dir / "data" / "postgres" / "postmaster.pid").exists()
