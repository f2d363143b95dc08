"""The outage watcher's logic on Trio's clock (no database: the probe is a stand-in)."""

from __future__ import annotations

import threading

import pytest
import trio

from coves.db import Database, DatabaseUnavailable, fail_fast_on_outage


def offline() -> Database:
    return Database("host=/nonexistent dbname=none", pool_size=2, connect_timeout_s=0.2)


class Verdicts:
    """A probe whose answers the test sets; counts how often it was asked."""

    def __init__(self) -> None:
        self.ok = True
        self.calls = 0

    async def __call__(self, timeout: float) -> bool:
        self.calls += 1
        return self.ok


async def test_a_failed_probe_fails_calls_at_once_and_a_good_one_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db, probe = offline(), Verdicts()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: db.watch(interval=0.5, probe=probe))
        await trio.sleep(1)
        assert db.reachable and await db.is_reachable()
        probe.ok = False
        await trio.sleep(0.6)
        assert not db.reachable and not await db.is_reachable()
        started = trio.current_time()
        with pytest.raises(DatabaseUnavailable):
            await db.fetchval("SELECT 1")  # no pool, no thread: refused at once
        assert trio.current_time() == started
        probe.ok = True
        await trio.sleep(0.6)
        assert db.reachable
        nursery.cancel_scope.cancel()


async def test_waiting_request_calls_are_abandoned_when_the_database_goes_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    db, probe = offline(), Verdicts()
    stuck = threading.Event()  # a statement on a frozen server
    outcome: list[str] = []

    async def request() -> None:
        with fail_fast_on_outage():
            try:
                await db._abandonable(lambda: stuck.wait(30))
            except DatabaseUnavailable:
                outcome.append(f"503 after {trio.current_time() - started:.1f}s")

    async def ingestion() -> None:  # not under fail_fast_on_outage: waits for the database
        await trio.to_thread.run_sync(lambda: stuck.wait(30))
        outcome.append("ingestion finished")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: db.watch(interval=0.5, probe=probe))
        started = trio.current_time()
        nursery.start_soon(request)
        nursery.start_soon(ingestion)
        await trio.sleep(0.2)
        probe.ok = False
        await trio.sleep(1.0)
        assert outcome == ["503 after 0.5s"]
        stuck.set()
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert outcome[-1] == "ingestion finished"


async def test_a_connection_error_makes_the_watcher_probe_at_once() -> None:
    """Real clock (the failing call runs in a thread, which autojump would skip past):
    the next probe is due in 30 s, yet the failure brings it forward."""
    db, probe = offline(), Verdicts()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: db.watch(interval=30, probe=probe))
            await trio.sleep(0.1)
            assert probe.calls == 1
            probe.ok = False
            with pytest.raises(DatabaseUnavailable):
                await db.fetchval("SELECT 1")  # the pool is closed: a connection-level failure
            while db.reachable:
                await trio.sleep(0.01)
            assert probe.calls == 2
            nursery.cancel_scope.cancel()
    assert db.reachable  # nobody watches any more: back to asking the pool
