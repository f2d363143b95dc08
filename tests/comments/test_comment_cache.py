"""The shared thread cache: one build per key per TTL, viewer state per request."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from coves.context import AppContext
from coves.db import Database
from coves.ttlcache import TTLCache
from tests.comments import factories as f
from tests.comments.conftest import Client


class Builds:
    def __init__(self, delay: float = 0.0) -> None:
        self.count = 0
        self.delay = delay

    async def __call__(self) -> int:
        self.count += 1
        await trio.sleep(self.delay)
        return self.count


async def test_concurrent_misses_share_one_build(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[str, int] = TTLCache(2.0)
    build = Builds(delay=0.5)
    results: list[int] = []

    async def reader() -> None:
        results.append(await cache.get_or_load("k", build))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(reader)
    assert build.count == 1
    assert results == [1] * 20
    assert (cache.misses, cache.hits) == (1, 19)


async def test_entries_expire_after_ttl(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[str, int] = TTLCache(2.0)
    build = Builds()
    assert await cache.get_or_load("k", build) == 1
    await trio.sleep(1.9)
    assert await cache.get_or_load("k", build) == 1
    await trio.sleep(0.2)
    assert await cache.get_or_load("k", build) == 2
    assert await cache.get_or_load("other", build) == 3


async def test_failures_are_not_cached(autojump_clock: trio.testing.MockClock) -> None:
    cache: TTLCache[str, int] = TTLCache(2.0)
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await trio.sleep(0.1)
        raise ValueError("boom")

    async def reader() -> None:
        with pytest.raises(ValueError, match="boom"):
            await cache.get_or_load("k", failing)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(reader)
    assert calls == 3  # each waiter retried for itself once the leader failed
    assert len(cache) == 0
    assert await cache.get_or_load("k", Builds()) == 1


async def test_size_is_bounded_and_zero_ttl_disables(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cache: TTLCache[int, int] = TTLCache(5.0, max_entries=3)
    build = Builds()
    for key in range(5):
        await cache.get_or_load(key, build)
    assert len(cache) == 3
    assert await cache.get_or_load(0, build) == 6  # evicted, rebuilt
    assert await cache.get_or_load(4, build) == 5  # still cached

    off: TTLCache[str, int] = TTLCache(0)
    other = Builds()
    await off.get_or_load("k", other)
    await off.get_or_load("k", other)
    assert other.count == 2 and len(off) == 0


async def test_viewers_share_a_build_but_not_viewer_state(
    db: Database, client: Client, comment_ctx: AppContext
) -> None:
    post = await f.thread_fixture(db)
    top = await f.comment(db, post)
    reply = await f.comment(db, post, top, minutes=1)
    gone = await f.comment(db, post, top, deleted=True, minutes=2)
    await f.comment(db, post, gone, minutes=3)
    await f.vote(db, "did:plc:ann", top, 1)
    await f.vote(db, "did:plc:bea", reply, -1)

    ann = await client.get({"post": post.uri}, viewer="did:plc:ann")
    bea = await client.get({"post": post.uri}, viewer="did:plc:bea")
    anonymous = await client.get({"post": post.uri})

    cache = comment_ctx.read.comment_threads
    assert cache is not None and (cache.misses, cache.hits) == (1, 2)

    def viewer_of(body: dict, *path: int) -> object:  # type: ignore[type-arg]
        node = body["comments"][path[0]]
        for index in path[1:]:
            node = node["replies"][index]
        return node["comment"].get("viewer")

    assert viewer_of(ann.body, 0)["vote"] == "up"  # type: ignore[index]
    assert viewer_of(ann.body, 0, 1) == {}
    assert viewer_of(bea.body, 0) == {}
    assert viewer_of(bea.body, 0, 1)["vote"] == "down"  # type: ignore[index]
    assert viewer_of(anonymous.body, 0) is None
    # Placeholders never carry viewer state, and the shared copy was not mutated.
    by_uri = {n["comment"]["uri"]: n for n in ann.body["comments"][0]["replies"]}
    assert "viewer" not in by_uri[gone.uri]["comment"]
    assert all("viewer" not in n["comment"] for n in anonymous.body["comments"][0]["replies"])
