"""The embedded PostgreSQL child: data kept across restarts, one server per data dir."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import psycopg
import pytest
import trio

from coves.db.embedded import EmbeddedPostgres, EmbeddedPostgresError


async def test_data_survives_restart_and_second_server_is_refused(server_dir: Path) -> None:
    data_dir = server_dir / "data"
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = EmbeddedPostgres(data_dir)
            conninfo: str = await nursery.start(server.run)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute("CREATE TABLE kept (v text)")
                conn.execute("INSERT INTO kept VALUES ('still here')")
                pid = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert pid is not None

            # A second Coves on the same data directory must not start a server.
            with pytest.raises(EmbeddedPostgresError, match="in use by a running Coves"):
                await EmbeddedPostgres(data_dir).run()

            postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
            owner = psutil.Process(postmaster).uids().real
            if os.geteuid() == 0:
                # As root, PostgreSQL (which refuses root) runs as an unprivileged user.
                assert owner != 0
            else:
                assert owner == os.geteuid()
            nursery.cancel_scope.cancel()

        # Cancelling the child stopped PostgreSQL (fast shutdown) and removed its pid file.
        assert not psutil.pid_exists(postmaster) or psutil.Process(postmaster).status() == (
            psutil.STATUS_ZOMBIE
        )
        assert not (data_dir / "postgres" / "postmaster.pid").exists()

        async with trio.open_nursery() as nursery:
            conninfo = await nursery.start(EmbeddedPostgres(data_dir).run)
            with psycopg.connect(conninfo) as conn:
                row = conn.execute("SELECT v FROM kept").fetchone()
            assert row == ("still here",)
            nursery.cancel_scope.cancel()


def test_long_data_dir_gets_a_short_private_socket_dir(server_dir: Path) -> None:
    deep = server_dir / ("x" * 60) / ("y" * 60)
    server = EmbeddedPostgres(deep)
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 107
    assert str(server.socket_dir).startswith("/tmp/coves-pg-")
    assert EmbeddedPostgres(deep).socket_dir == server.socket_dir  # stable across runs
