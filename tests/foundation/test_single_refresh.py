"""One refresh per key across processes: two Database pools on one database play
two processes, each with its own SingleRefresh (its own in-process locks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import trio

from coves import clock
from coves.db import Database
from coves.db.queries import refresh_leases
from coves.single_refresh import RefreshBusy, SingleRefresh

SCOPE = "test_token"


@pytest.fixture
async def other_db(db: Database) -> AsyncIterator[Database]:
    """A second process's pool on the same database."""
    other = Database(db.conninfo, pool_size=4, statement_timeout_ms=20_000)
    await other.open()
    try:
        yield other
    finally:
        await other.close()


class Token:
    """The stored state both processes read (what the session row is to them)."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.refreshes = 0
        self.in_flight = 0
        self.overlapped = False

    async def done(self) -> str | None:
        return self.value

    async def refresh(self) -> str:
        self.in_flight += 1
        self.overlapped |= self.in_flight > 1
        try:
            self.refreshes += 1
            await trio.sleep(0.3)  # a network round trip: long enough to race
            self.value = f"token-{self.refreshes}"
            return self.value
        finally:
            self.in_flight -= 1


async def test_two_processes_racing_refresh_once(db: Database, other_db: Database) -> None:
    token = Token()
    processes = [SingleRefresh(db, SCOPE), SingleRefresh(other_db, SCOPE)]
    got: list[str] = []

    async def caller(single: SingleRefresh) -> None:
        got.append(await single.run("k1", done=token.done, refresh=token.refresh))

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                for single in processes:
                    nursery.start_soon(caller, single)
    assert token.refreshes == 1 and not token.overlapped
    assert got == ["token-1"] * 10
    assert sum(p.claims for p in processes) == 1
    assert await db.fetchval("SELECT count(*) FROM refresh_leases") == 0  # released
    assert all(p._locks == {} for p in processes)


async def test_keys_and_scopes_do_not_wait_for_each_other(db: Database, other_db: Database) -> None:
    tokens = {name: Token() for name in ("a", "b", "c")}
    one, two = SingleRefresh(db, SCOPE), SingleRefresh(other_db, SCOPE)
    elsewhere = SingleRefresh(other_db, "another_scope")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: one.run("a", done=tokens["a"].done, refresh=tokens["a"].refresh)
            )
            nursery.start_soon(
                lambda: two.run("b", done=tokens["b"].done, refresh=tokens["b"].refresh)
            )
            nursery.start_soon(
                lambda: elsewhere.run("a", done=tokens["c"].done, refresh=tokens["c"].refresh)
            )
    assert [t.refreshes for t in tokens.values()] == [1, 1, 1]


async def test_a_failed_refresh_releases_the_lease_at_once(
    db: Database, other_db: Database
) -> None:
    token = Token()
    one, two = SingleRefresh(db, SCOPE), SingleRefresh(other_db, SCOPE)

    async def broken() -> str:
        raise RuntimeError("the authorization server is down")

    with trio.fail_after(10):
        with pytest.raises(RuntimeError):
            await one.run("k", done=token.done, refresh=broken)
        assert await db.fetchval("SELECT count(*) FROM refresh_leases") == 0
        started = trio.current_time()
        assert await two.run("k", done=token.done, refresh=token.refresh) == "token-1"
        assert trio.current_time() - started < 5.0  # no lease to wait out


async def test_a_cancelled_refresh_releases_the_lease(db: Database, other_db: Database) -> None:
    token = Token()
    one, two = SingleRefresh(db, SCOPE), SingleRefresh(other_db, SCOPE)

    async def hangs() -> str:
        await trio.sleep_forever()
        raise AssertionError

    with trio.fail_after(10):
        with trio.move_on_after(0.5):
            await one.run("k", done=token.done, refresh=hangs)
        assert await db.fetchval("SELECT count(*) FROM refresh_leases") == 0
        assert await two.run("k", done=token.done, refresh=token.refresh) == "token-1"


async def test_a_crashed_holder_lease_expires_and_another_takes_over(
    db: Database, other_db: Database
) -> None:
    """A process died holding the lease: the others wait for it to expire, not forever."""
    token = Token()
    now = clock.utcnow()
    assert await refresh_leases.claim(
        db, SCOPE, "k", holder="dead", now=now, until=now + timedelta(seconds=1)
    )
    survivor = SingleRefresh(other_db, SCOPE, lease_seconds=1.0, poll_seconds=0.05)
    with trio.fail_after(10):
        started = trio.current_time()
        assert await survivor.run("k", done=token.done, refresh=token.refresh) == "token-1"
    assert trio.current_time() - started >= 0.5
    assert token.refreshes == 1


async def test_the_holders_result_is_used_while_waiting(db: Database, other_db: Database) -> None:
    """The other process finishes while we wait on its lease: we use its result."""
    token = Token()
    now = clock.utcnow()
    assert await refresh_leases.claim(
        db, SCOPE, "k", holder="busy", now=now, until=now + timedelta(seconds=30)
    )
    waiter = SingleRefresh(other_db, SCOPE, poll_seconds=0.05)
    got: list[str] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def wait() -> None:
                got.append(await waiter.run("k", done=token.done, refresh=token.refresh))

            nursery.start_soon(wait)
            await trio.sleep(0.3)
            assert got == []
            token.value = "theirs"
    assert got == ["theirs"] and token.refreshes == 0


async def test_a_lease_held_too_long_gives_up(db: Database, other_db: Database) -> None:
    token = Token()
    now = clock.utcnow()
    assert await refresh_leases.claim(
        db, SCOPE, "k", holder="stuck", now=now, until=now + timedelta(seconds=60)
    )
    waiter = SingleRefresh(other_db, SCOPE, poll_seconds=0.05, max_wait=0.5)
    with trio.fail_after(10), pytest.raises(RefreshBusy):
        await waiter.run("k", done=token.done, refresh=token.refresh)
    assert token.refreshes == 0
    # Only its holder releases a lease: the stuck one is still there.
    await refresh_leases.release(db, SCOPE, "k", "someone else")
    assert await db.fetchval("SELECT holder FROM refresh_leases") == "stuck"
