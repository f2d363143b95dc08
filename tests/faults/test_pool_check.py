"""The pool's checkout check (an empty statement: a round trip) is skipped for a
connection used moments ago, and done again after idling or after an outage."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from psycopg_pool import ConnectionPool

from coves.db import Database, _pool


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
