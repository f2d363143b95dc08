"""The real read endpoints behind the response micro-cache (turned on here)."""

from __future__ import annotations

from dataclasses import replace

import trio
import trio.testing

from coves.context import AppContext
from coves.db import Database
from coves.xrpc.app import create_app
from coves.xrpc.routing import collect_endpoints
from tests.read.conftest import Client
from tests.support.factories import NOW, Factory

FEED = "social.coves.feed.getCommunity"
TIMELINE = "social.coves.feed.getTimeline"


def uris(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["post"]["uri"] for item in body["feed"]]


async def test_anonymous_feed_is_shared_until_the_ttl_passes(
    mock_clock: trio.testing.MockClock,
    db: Database,
    read_ctx: AppContext,
    factory: Factory,
    lexicons: object,
) -> None:
    read_ctx = replace(read_ctx, settings=read_ctx.settings.replace(response_cache_seconds=1.0))
    client = Client(create_app(read_ctx), lexicons)  # type: ignore[arg-type]
    author = await factory.user("a.test")
    viewer = await factory.user("v.test")
    c = await factory.community("c")
    first = await factory.post(c, author, created_at=NOW)
    params = {"community": c, "sort": "new"}
    status, body = await client.get(FEED, params)
    assert status == 200 and uris(body) == [first]

    second = await factory.post(c, author, created_at=NOW)
    _, cached = await client.get(FEED, params)
    assert uris(cached) == [first]  # the shared copy, less than a second old
    _, mine = await client.get(FEED, params, viewer=viewer)
    assert set(uris(mine)) == {first, second}  # a viewer's request is never served from it
    _, other_key = await client.get(FEED, {**params, "limit": 5})
    assert set(uris(other_key)) == {first, second}

    mock_clock.jump(1.01)
    _, fresh = await client.get(FEED, params)
    assert set(uris(fresh)) == {first, second}


async def test_not_found_is_not_cached(
    mock_clock: trio.testing.MockClock,
    db: Database,
    read_ctx: AppContext,
    factory: Factory,
    lexicons: object,
) -> None:
    read_ctx = replace(read_ctx, settings=read_ctx.settings.replace(response_cache_seconds=1.0))
    client = Client(create_app(read_ctx), lexicons)  # type: ignore[arg-type]
    missing = "did:plc:notyet00000000000000000"
    status, body = await client.get(FEED, {"community": missing})
    assert status == 404, body
    await factory.community("late", did=missing)
    status, body = await client.get(FEED, {"community": missing})
    assert status == 200, body


def test_cached_endpoints_are_the_anonymous_reads() -> None:
    cached = {nsid for nsid, ep in collect_endpoints().items() if ep.cache_seconds > 0}
    assert cached == {
        "social.coves.feed.getCommunity",
        "social.coves.communityFeed.getCommunity",
        "social.coves.feed.getDiscover",
        "social.coves.actor.getPosts",
        "social.coves.actor.getProfile",
        "social.coves.community.get",
        "social.coves.community.list",
        "social.coves.community.search",
        "social.coves.community.post.get",
        "social.coves.community.comment.getComments",
        "social.coves.actor.getComments",
        "social.coves.feed.searchPosts",
        "com.atproto.identity.resolveHandle",
    }
    assert TIMELINE not in cached
    # Nothing that writes, and nothing that requires a viewer, is ever cached.
    for ep in collect_endpoints().values():
        if ep.cache_seconds > 0:
            assert ep.kind == "query" and ep.auth.name != "REQUIRED"
