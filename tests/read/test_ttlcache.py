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


async def test_get_or_load_shares_one_load_and_serves_stale(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=5.0, stale_ttl=60.0)
    loads: list[str] = []

    async def load() -> str:
        loads.append("x")
        await trio.sleep(1)
        return f"v{len(loads)}"

    got: list[tuple[str | None, float]] = []

    async def read() -> None:
        value = await cache.get_or_load("k", load)
        got.append((value, trio.current_time()))

    async with trio.open_nursery() as nursery:  # cold: everyone waits for one load
        for _ in range(5):
            nursery.start_soon(read)
    assert loads == ["x"] and [v for v, _ in got] == ["v1"] * 5
    await trio.sleep(6)  # expired: one refresher, the others get the stale value now
    got.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.sleep(0.1)
        started = trio.current_time()
        for _ in range(4):
            nursery.start_soon(read)
    stale = [(v, t) for v, t in got if v == "v1"]
    assert len(stale) == 4 and all(t == started for _, t in stale)
    assert [v for v, _ in got if v != "v1"] == ["v2"]
    assert cache.get_stale("k") == "v2"
    await trio.sleep(61)
    assert cache.get_stale("k") is None


async def test_none_is_not_cached(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=5.0)
    calls = 0

    async def load() -> str | None:
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load("k", load) is None
    assert await cache.get_or_load("k", load) is None
    assert calls == 2


async def test_a_drop_during_a_load_keeps_what_it_read_out_of_the_cache(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A change lands while a load is reading: the load may have read the rows before
    the change, so its answer goes to its own caller but is not kept, and whoever
    waited on it loads again (seeing the change), instead of sharing the old answer."""
    cache: TTLCache[str, str] = TTLCache(ttl=60.0)
    version = ["before"]
    reading = trio.Event()
    loads = 0

    async def load() -> str:
        nonlocal loads
        loads += 1
        read = version[0]
        reading.set()
        await trio.sleep(1)  # the query's round trip: the change commits meanwhile
        return read

    got: dict[str, str | None] = {}

    async def first() -> None:
        got["first"] = await cache.get_or_load("k", load)

    async def waiter() -> None:
        await reading.wait()
        got["waiter"] = await cache.get_or_load("k", load)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        nursery.start_soon(waiter)
        await reading.wait()
        await trio.sleep(0.5)
        version[0] = "after"
        assert cache.discard(lambda key, _value: key == "k") == 0  # nothing stored yet
    assert got == {"first": "before", "waiter": "after"}
    assert loads == 2 and cache.get("k") == "after"

    # A drop that matches by value (not key) is checked against what the load read.
    reading = trio.Event()

    async def load_other() -> str:
        reading.set()
        await trio.sleep(1)
        return "about-bob"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cache.get_or_load, "other", load_other)
        await reading.wait()
        cache.discard(lambda _key, value: "bob" in value)
        cache.discard(lambda _key, value: "carol" in value)
    assert cache.get("other") is None
    cache.clear()  # a clear during a load keeps nothing either
    assert cache.get("k") is None


async def test_discard_drops_stored_entries_by_key_or_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cache: TTLCache[str, str] = TTLCache(ttl=60.0)
    for key in ("a", "b", "c"):
        cache.put(key, key.upper())
    assert cache.discard(lambda key, value: key == "a" or value == "C") == 2
    assert [cache.get(k) for k in ("a", "b", "c")] == [None, "B", None]
