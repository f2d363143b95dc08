from __future__ import annotations

import trio
import trio.testing

from coves.ttlcache import TTLCache


async def test_entries_expire_on_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=5.0)
    cache.put("a", 1)
    await trio.sleep(4.9)
    assert cache.get("a") == 1
    await trio.sleep(0.2)
    assert cache.get("a") is None
    assert len(cache) == 0


async def test_overflow_drops_oldest_half(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[int, int] = TTLCache(ttl=60.0, max_entries=4)
    for i in range(5):
        cache.put(i, i)
        await trio.sleep(1)
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]
    cache.put(2, 20)  # re-putting refreshes age and position
    assert cache.get(2) == 20
