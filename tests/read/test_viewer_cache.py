"""The per-viewer response cache (getTimeline, post.get) and its invalidation by the indexer."""

from __future__ import annotations

from dataclasses import replace

import trio
import trio.testing

from coves.config import test_settings
from coves.context import AppContext, build_context
from coves.db import Database
from coves.ingest.build import production_indexer
from coves.ingest.indexer import Indexer
from coves.lexicon.registry import LexiconRegistry
from coves.metrics import Metrics
from coves.respcache import CachedResponse, ResponseCache
from coves.xrpc.app import create_app
from tests.read.conftest import Client
from tests.support.events import (
    POST,
    PROFILE,
    SUBSCRIPTION,
    VOTE,
    Stream,
    community_record,
    did,
    frames,
    post_record,
    subscription_record,
    vote_record,
)

INSTANCE = "did:web:localhost"
COMMUNITY = did("gaming")
ALICE = did("alice")
VIEWER = did("viewer")
BOB = did("bob")
TIMELINE = "social.coves.feed.getTimeline"
POST_GET = "social.coves.community.post.get"


def outcome_count(ctx: AppContext, result: str) -> float:
    prefix = f'coves_response_cache_total{{result="{result}"}} '
    for line in ctx.metrics.render().decode().splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


POST_URI = f"at://{COMMUNITY}/{POST}/3kpost0000001"


async def cached_world(
    db: Database, read_ctx: AppContext, lexicons: LexiconRegistry
) -> tuple[AppContext, Client, Indexer, Stream]:
    """An app with the per-viewer cache on, its indexer wired to invalidation, and a
    community with one post to which the viewer and Bob subscribe."""
    read_ctx = replace(read_ctx, settings=read_ctx.settings.replace(viewer_cache_seconds=1.0))
    client = Client(create_app(read_ctx), lexicons)
    indexer = Indexer(db, instance_did=INSTANCE, metrics=Metrics())
    indexer.on_changed.append(read_ctx.invalidation.changed)
    stream = Stream()
    await indexer.apply(
        frames(
            stream.identity(COMMUNITY, "gaming.community.localhost"),
            stream.commit(COMMUNITY, PROFILE, "self", community_record("gaming", INSTANCE, ALICE)),
            stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
            stream.commit(VIEWER, SUBSCRIPTION, "3ksub00000001", subscription_record(COMMUNITY)),
            stream.commit(BOB, SUBSCRIPTION, "3ksub00000002", subscription_record(COMMUNITY)),
        )
    )
    return read_ctx, client, indexer, stream


async def test_timeline_is_cached_per_viewer_until_their_repo_changes(
    mock_clock: trio.testing.MockClock,
    db: Database,
    read_ctx: AppContext,
    lexicons: LexiconRegistry,
) -> None:
    read_ctx, client, indexer, stream = await cached_world(db, read_ctx, lexicons)
    post_uri = POST_URI

    async def timeline(viewer: str) -> dict:  # type: ignore[type-arg]
        status, body = await client.get(TIMELINE, {}, viewer=viewer)
        assert status == 200, body
        [item] = body["feed"]
        assert item["post"]["uri"] == post_uri
        return item["post"]["viewer"]  # type: ignore[no-any-return]

    assert await timeline(VIEWER) == {}
    assert await timeline(BOB) == {}  # a separate entry: misses, not the viewer's copy
    assert outcome_count(read_ctx, "miss") == 2

    # Someone else's vote leaves the viewer's entry alone.
    await indexer.apply(frames(stream.commit(ALICE, VOTE, "3kvote0000001", vote_record(post_uri))))
    assert await timeline(VIEWER) == {}
    assert outcome_count(read_ctx, "hit") == 1

    # The viewer's own vote drops their entry at once, and only theirs.
    await indexer.apply(
        frames(stream.commit(VIEWER, VOTE, "3kvote0000002", vote_record(post_uri, "down")))
    )
    mine = await timeline(VIEWER)
    assert mine["vote"] == "down" and mine["voteUri"].endswith("/3kvote0000002")
    assert await timeline(BOB) == {}
    assert outcome_count(read_ctx, "hit") == 2

    # Deleting the vote is a commit from the viewer's repo too.
    await indexer.apply(frames(stream.delete(VIEWER, VOTE, "3kvote0000002")))
    assert await timeline(VIEWER) == {}

    # Anonymous callers never get a viewer's entry (the timeline requires auth anyway).
    status, _ = await client.get(TIMELINE, {})
    assert status == 401


async def test_post_get_is_cached_per_viewer_until_their_repo_changes(
    mock_clock: trio.testing.MockClock,
    db: Database,
    read_ctx: AppContext,
    lexicons: LexiconRegistry,
) -> None:
    read_ctx, client, indexer, stream = await cached_world(db, read_ctx, lexicons)
    post_uri = POST_URI

    async def viewer_state(viewer: str) -> dict:  # type: ignore[type-arg]
        status, body = await client.get(POST_GET, {"uris": post_uri}, viewer=viewer)
        assert status == 200, body
        [entry] = body["posts"]
        assert entry["uri"] == post_uri
        return entry.get("viewer", {})  # type: ignore[no-any-return]

    assert await viewer_state(VIEWER) == {}
    assert await viewer_state(VIEWER) == {}
    assert outcome_count(read_ctx, "hit") == 1

    # Someone else's vote leaves it; the viewer's own vote drops it at once.
    await indexer.apply(frames(stream.commit(BOB, VOTE, "3kvote0000001", vote_record(post_uri))))
    assert await viewer_state(VIEWER) == {}
    assert outcome_count(read_ctx, "hit") == 2
    await indexer.apply(frames(stream.commit(VIEWER, VOTE, "3kvote0000002", vote_record(post_uri))))
    assert (await viewer_state(VIEWER))["vote"] == "up"
    assert await viewer_state(BOB) != {}  # Bob's own vote, his own entry
    assert outcome_count(read_ctx, "hit") == 2


async def test_timeline_entries_expire_without_commits(
    mock_clock: trio.testing.MockClock,
    db: Database,
    read_ctx: AppContext,
    lexicons: LexiconRegistry,
) -> None:
    read_ctx = replace(read_ctx, settings=read_ctx.settings.replace(viewer_cache_seconds=1.0))
    client = Client(create_app(read_ctx), lexicons)
    await client.get(TIMELINE, {}, viewer=VIEWER)
    await client.get(TIMELINE, {}, viewer=VIEWER)
    mock_clock.jump(2.5)  # past the TTL and past the stale window
    await client.get(TIMELINE, {}, viewer=VIEWER)
    assert outcome_count(read_ctx, "miss") == 2
    assert outcome_count(read_ctx, "hit") == 1


async def test_invalidation_during_a_computation_is_not_lost(autojump_clock: object) -> None:
    cache = ResponseCache()
    calls = [0]

    async def compute() -> CachedResponse:
        calls[0] += 1
        n = calls[0]
        await trio.sleep(1.0 if n == 1 else 0.1)  # the old read finishes last
        return CachedResponse(b"v%d" % n)

    seen: list[tuple[bytes, str]] = []

    async def get(delay: float) -> None:
        await trio.sleep(delay)
        value, outcome = await cache.get("k", 10.0, compute, tag="did:plc:v")
        seen.append((value.body, outcome))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(get, 0.0)  # reads the old state
        await trio.sleep(0.5)
        assert cache.invalidate("did:plc:v") == 1  # the commit lands meanwhile
        nursery.start_soon(get, 0.0)  # after the commit: must not join the old read
    assert calls == [2]
    assert sorted(seen) == [(b"v1", "miss"), (b"v2", "miss")]
    # Only the computation that started after the invalidation was kept.
    assert (await cache.get("k", 10.0, compute, tag="did:plc:v")) == (
        CachedResponse(b"v2"),
        "hit",
    )


async def test_invalidate_touches_only_its_tag(mock_clock: object) -> None:
    cache = ResponseCache(max_entries=3)

    def value(body: bytes):  # type: ignore[no-untyped-def]
        async def compute() -> CachedResponse:
            return CachedResponse(body)

        return compute

    await cache.get("a1", 60.0, value(b"a1"), tag="a")
    await cache.get("a2", 60.0, value(b"a2"), tag="a")
    await cache.get("b1", 60.0, value(b"b1"), tag="b")
    await cache.get("anon", 60.0, value(b"anon"))  # evicts a1 (least recent)
    assert cache.invalidate("a") == 1
    assert cache.invalidate("a") == 0
    assert len(cache) == 2
    assert (await cache.get("b1", 60.0, value(b"x"), tag="b"))[1] == "hit"
    assert (await cache.get("anon", 60.0, value(b"x")))[1] == "hit"
    assert (await cache.get("a2", 60.0, value(b"a2'"), tag="a"))[1] == "miss"
    assert cache.bytes == sum(CachedResponse(b).size for b in (b"b1", b"anon", b"a2'"))


async def test_production_indexer_drops_the_apps_viewer_entries(db: Database) -> None:
    ctx = build_context(test_settings(jetstream_enabled=True), db, metrics=Metrics())
    sink = production_indexer(ctx)
    assert isinstance(sink, Indexer)
    cache = ctx.response_cache

    async def compute() -> CachedResponse:
        return CachedResponse(b"timeline")

    await cache.get("k", 60.0, compute, tag=VIEWER)
    stream = Stream()
    with trio.fail_after(30):
        await sink.apply(
            frames(
                stream.commit(VIEWER, SUBSCRIPTION, "3ksub00000001", subscription_record(COMMUNITY))
            )
        )
    assert len(cache) == 0
