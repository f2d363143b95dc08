"""Rate limits shared by several processes: local counting, summed through PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from coves.db import Database, DatabaseUnavailable
from coves.db.queries import ratelimits
from coves.xrpc.ratelimit import LimitClass, RateLimiter, SharedStore
from nurseries.upkeep import ratelimit_sync_child

GENERAL = LimitClass("general", 10, 60.0)


class WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def push_to(db: Database):  # type: ignore[no-untyped-def]
    async def push(
        keys: Sequence[str], starts: Sequence[int], hits: Sequence[int], expires: Sequence[float]
    ) -> list[tuple[str, int, int]]:
        return await ratelimits.add_hits(db, keys, starts, hits, expires)

    return push


async def test_two_processes_share_one_budget(db: Database) -> None:
    wall = WallClock(1_800_000_030.0)  # 30 s into a minute window
    stores = [SharedStore(clock=wall), SharedStore(clock=wall)]
    one, two = (RateLimiter([GENERAL], store) for store in stores)
    client = "198.51.100.7"
    for limiter in (one, two):
        for _ in range(4):
            assert limiter.check("general", client).allowed
    for store in stores:
        await store.sync(push_to(db))
    # The first process synced before the second: it knew only its own 4.
    assert one.check("general", client).remaining == 5
    await stores[0].sync(push_to(db))  # now it knows all 9
    last = one.check("general", client)
    assert last.allowed and last.remaining == 0
    assert last.reset_after == pytest.approx(30.0)
    assert not one.check("general", client).allowed
    # The second learns the others' hits at its next sync.
    assert two.check("general", client).allowed
    await stores[1].sync(push_to(db))
    assert not two.check("general", client).allowed
    # Another client is not affected.
    assert two.check("general", "198.51.100.8").remaining == 9
    # The next window starts from zero, everywhere.
    wall.now += 30.0
    assert one.check("general", client).remaining == 9
    await stores[0].sync(push_to(db))
    assert len(stores[0]) == 1  # the old window was dropped at the sync


async def test_counts_survive_a_failed_sync() -> None:
    wall = WallClock(1_800_000_010.0)  # 10 s into a window
    store = SharedStore(clock=wall)
    limiter = RateLimiter([GENERAL], store)
    for _ in range(3):
        limiter.check("general", "203.0.113.1")
    sent: list[int] = []

    async def down(*columns: Sequence[object]) -> list[tuple[str, int, int]]:
        raise DatabaseUnavailable("no")

    async def up(
        keys: Sequence[str], starts: Sequence[int], hits: Sequence[int], expires: Sequence[float]
    ) -> list[tuple[str, int, int]]:
        sent.extend(hits)
        return [(k, s, h + 20) for k, s, h in zip(keys, starts, hits, strict=True)]

    with pytest.raises(DatabaseUnavailable):
        await store.sync(down)
    # Still counting alone meanwhile.
    assert limiter.check("general", "203.0.113.1").remaining == 6
    assert await store.sync(up) == 1
    assert sent == [4]  # nothing lost, nothing sent twice
    assert limiter.check("general", "203.0.113.1").remaining == 0  # 24 known + 1 > 10
    assert await store.sync(up) == 1
    assert sent == [4, 1]


async def test_the_sync_child_keeps_the_shared_windows(db: Database) -> None:
    store = SharedStore()
    limiter = RateLimiter([GENERAL], store)
    for _ in range(5):
        limiter.check("general", "192.0.2.44")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(ratelimit_sync_child(db, store, 0.05).start)
            while not await db.fetchval("SELECT sum(hits) FROM rate_limit_counts"):
                await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    assert await db.fetchval("SELECT sum(hits) FROM rate_limit_counts") == 5
    # Expired windows are swept.
    await db.execute("UPDATE rate_limit_counts SET expires_at = now() - interval '1 s'")
    assert await ratelimits.sweep(db) == 1
