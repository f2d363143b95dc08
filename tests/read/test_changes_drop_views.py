"""Every change the indexer applies drops the built views it makes stale, at once.

The caches of built views (post views, shared thread builds, community lookups)
are given a minute here, so anything a read shows right after a change comes
from the database, not from the TTL running out: votes, comments, edits and
deletes, profiles, handles, account status, communities. (The same changes
reach the other processes over the invalidation channel:
tests/foundation/test_invalidation.py, and the real binary with two workers in
tests/e2e/test_workers_read_your_writes.py.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio

from coves.changed import Changed
from coves.context import AppContext
from coves.db import Database
from coves.ingest.build import production_indexer
from coves.ingest.indexer import Indexer
from coves.lexicon.registry import LexiconRegistry
from coves.xrpc.app import create_app
from tests.read.conftest import Client
from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    VOTE,
    Stream,
    comment_record,
    community_record,
    did,
    frames,
    post_record,
    uri,
    vote_record,
)

INSTANCE = "did:web:localhost"
COMMUNITY = did("views-community")
ALICE, BOB, VIEWER = did("views-alice"), did("views-bob"), did("views-viewer")
ACTOR_PROFILE = "social.coves.actor.profile"
POST_URI = uri(COMMUNITY, POST, "3kpost0000001")
FIRST = uri(BOB, COMMENT, "3kcomm0000001")
REPLY = uri(ALICE, COMMENT, "3kcomm0000002")


@pytest.fixture
def long_ctx(read_ctx: AppContext) -> AppContext:
    """Built views kept for a minute: only a drop can make a read fresh here."""
    return replace(read_ctx, settings=read_ctx.settings.replace(read_cache_seconds=60.0))


class World:
    def __init__(self, ctx: AppContext, client: Client, indexer: Indexer) -> None:
        self.ctx = ctx
        self.client = client
        self.indexer = indexer
        self.stream = Stream()
        self.changes: list[Changed] = []
        indexer.on_changed.append(self.changes.append)

    async def index(self, *events: dict[str, Any]) -> Changed:
        self.changes.clear()
        result = await self.indexer.apply(frames(*events))
        assert result.dead_lettered == 0, result.reasons
        [changed] = self.changes
        return changed

    async def thread(self) -> list[dict[str, Any]]:
        status, body = await self.client.get(
            "social.coves.community.comment.getComments", {"post": POST_URI}, viewer=VIEWER
        )
        assert status == 200, body
        return body["comments"]  # type: ignore[no-any-return]

    async def feed(self) -> tuple[int, Any]:
        return await self.client.get(
            "social.coves.feed.getCommunity", {"community": COMMUNITY, "sort": "new"}
        )

    async def post(self) -> dict[str, Any]:
        status, body = await self.feed()
        assert status == 200, body
        [item] = body["feed"]
        return item["post"]  # type: ignore[no-any-return]


@pytest.fixture
async def world(long_ctx: AppContext, lexicons: LexiconRegistry) -> World:
    ctx = long_ctx
    world = World(ctx, Client(create_app(ctx), lexicons), production_indexer(ctx))
    s = world.stream
    await world.index(
        s.commit(COMMUNITY, PROFILE, "self", community_record("views", INSTANCE, ALICE)),
        s.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE)),
        s.commit(BOB, COMMENT, "3kcomm0000001", comment_record(POST_URI, POST_URI, "first")),
        s.commit(ALICE, COMMENT, "3kcomm0000002", comment_record(POST_URI, FIRST, "reply")),
    )
    return world


async def test_votes_comments_and_deletes_show_at_once(world: World) -> None:
    s = world.stream
    with trio.fail_after(30):
        [top] = await world.thread()  # every cache warm
        assert top["replies"][0]["comment"]["content"] == "reply"
        assert (await world.post())["stats"]["commentCount"] == 2

        # A vote on the post: its view, and the writer's repo for their own caches.
        changed = await world.index(s.commit(VIEWER, VOTE, "3kvote0000001", vote_record(POST_URI)))
        assert POST_URI in changed.posts and VIEWER in changed.repos
        assert (await world.post())["stats"]["upvotes"] == 1

        # A vote on a comment: the thread build that shows the comment.
        changed = await world.index(s.commit(VIEWER, VOTE, "3kvote0000002", vote_record(FIRST)))
        assert FIRST in changed.comments
        [top] = await world.thread()
        assert top["comment"]["stats"]["upvotes"] == 1
        assert top["comment"]["viewer"]["vote"] == "up"

        # Taking the vote back (a delete names no subject: the index knows it).
        changed = await world.index(s.delete(VIEWER, VOTE, "3kvote0000002"))
        assert FIRST in changed.comments
        [top] = await world.thread()
        assert top["comment"]["stats"]["upvotes"] == 0

        # An edit of the reply, then its delete (the root comes from the index).
        await world.index(
            s.commit(
                ALICE,
                COMMENT,
                "3kcomm0000002",
                comment_record(POST_URI, FIRST, "reply, edited"),
                operation="update",
            )
        )
        [top] = await world.thread()
        assert top["replies"][0]["comment"]["content"] == "reply, edited"
        changed = await world.index(s.delete(ALICE, COMMENT, "3kcomm0000002"))
        assert POST_URI in changed.posts and REPLY in changed.comments
        [top] = await world.thread()
        assert top.get("replies", []) == []
        assert (await world.post())["stats"]["commentCount"] == 1

        # The post edited, then deleted: its author's own cached responses go too.
        changed = await world.index(
            s.commit(
                COMMUNITY,
                POST,
                "3kpost0000001",
                post_record(COMMUNITY, ALICE, "Edited"),
                operation="update",
            )
        )
        assert ALICE in changed.repos and COMMUNITY in changed.repos
        assert (await world.post())["title"] == "Edited"
        changed = await world.index(s.delete(COMMUNITY, POST, "3kpost0000001"))
        assert ALICE in changed.repos  # known from the index: a delete has no record
        status, body = await world.feed()
        assert status == 200 and body["feed"] == []


async def test_profiles_handles_accounts_and_communities_show_at_once(world: World) -> None:
    s = world.stream
    with trio.fail_after(30):
        [top] = await world.thread()
        post = await world.post()
        assert post["author"].get("displayName") is None

        changed = await world.index(s.commit(BOB, ACTOR_PROFILE, "self", {"displayName": "Bobby"}))
        assert changed.actors == {BOB}
        [top] = await world.thread()
        assert top["comment"]["author"]["displayName"] == "Bobby"

        await world.index(s.commit(ALICE, ACTOR_PROFILE, "self", {"displayName": "Alicia"}))
        assert (await world.post())["author"]["displayName"] == "Alicia"

        # An account taken down: its comment becomes a placeholder at once.
        changed = await world.index(s.account(BOB, False, "takendown"))
        assert BOB in changed.actors
        [top] = await world.thread()
        assert top["comment"].get("isDeleted") or "author" not in top["comment"], top

        # A community's profile changed; then deleted: its feed is gone at once.
        changed = await world.index(
            s.commit(
                COMMUNITY,
                PROFILE,
                "self",
                community_record("views", INSTANCE, ALICE, displayName="Views!"),
                operation="update",
            )
        )
        assert COMMUNITY in changed.actors
        await world.index(s.delete(COMMUNITY, PROFILE, "self"))
        status, body = await world.feed()
        assert status == 404 and body["error"] == "CommunityNotFound"


async def test_changes_published_for_the_others_carry_every_kind(
    db: Database, long_ctx: AppContext
) -> None:
    """What the indexer hands the channel reaches a listener as the same change."""
    received: list[Changed] = []

    class Views:
        def drop_changed(self, changed: Changed) -> None:
            received.append(changed)

        def drop_all(self) -> None:
            raise AssertionError("no gap here")

    from coves.invalidation import Invalidation
    from coves.respcache import ResponseCache

    other = Invalidation(ResponseCache(), views=Views(), origin="other-process")
    payloads: list[str] = []

    async def publish(sent: Any) -> None:
        payloads.extend(sent)

    mine = Invalidation(long_ctx.response_cache, views=long_ctx.read, publish=publish)
    change = Changed.of(posts=[POST_URI], comments=[FIRST], actors=[BOB], repos=[ALICE])
    await mine.changed(change)
    for payload in payloads:
        other.deliver(payload)
    merged = Changed()
    for part in received:
        merged = merged | part
    assert merged == Changed.of(posts=[POST_URI], comments=[FIRST], actors=[BOB])
