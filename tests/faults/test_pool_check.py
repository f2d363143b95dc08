"""The pool's checkout check (an empty statement: a round trip) is skipped for a
connection used moments ago, and done again after idling or after an outage."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import trio
from psycopg_pool import ConnectionPool

from coves.db import Database, DatabaseUnavailable, _pool


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    real = ConnectionPool.check_connection

    def counting(conn: Any) -> None:
        seen.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counting))
    return seen


async def statements(db: Database, n: int) -> None:
    for _ in range(n):
        assert await db.fetchval("SELECT 1") == 1


async def test_a_connection_just_returned_is_not_checked_again(
    db: Database, checks: list[Any]
) -> None:
    with trio.fail_after(20):
        await statements(db, 6)  # every pooled connection used once
        checks.clear()
        await statements(db, 6)
        assert checks == []


async def test_after_an_outage_every_connection_is_checked(db: Database, checks: list[Any]) -> None:
    with trio.fail_after(20):
        await statements(db, 6)
        db._set_reachable(False, "a test outage")
        db._set_reachable(True)
        checks.clear()
        await statements(db, 1)
        assert len(checks) == 1  # the first checkout after it
        await statements(db, 6)
        # Each connection once, until it has been used again since the outage.
        assert len({id(conn) for conn in checks}) == len(checks), checks


async def test_a_connection_idle_longer_is_checked(
    db: Database, checks: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_pool, "RECHECK_AFTER_IDLE_SECONDS", 0.0)
    with trio.fail_after(20):
        await statements(db, 6)
        checks.clear()
        await statements(db, 4)
        assert len(checks) == 4


async def test_after_a_cut_connection_the_others_are_checked_before_use(
    db: Database, checks: list[Any]
) -> None:
    """A restart too quick for the watcher cuts every pooled connection: the first
    statement on one fails (a 503), and the rest are checked and replaced."""
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:  # two connections in recent use
            for _ in range(2):
                nursery.start_soon(statements, db, 3)

        def cut_others() -> None:
            with psycopg.connect(db.conninfo, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

        await trio.to_thread.run_sync(cut_others)
        checks.clear()
        failures = 0
        for _ in range(4):
            try:
                assert await db.fetchval("SELECT 1") == 1
            except DatabaseUnavailable:
                failures += 1
        assert failures == 1
        assert checks  # the connection after the failed one was checked first
