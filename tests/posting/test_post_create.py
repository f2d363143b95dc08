"""post.create against the reference PDS: text, links with cards, images."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from coves.config import Settings
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from tests.posting.world import POST, World, posting_world
from tests.support.pds import TestPds

CREATE = "social.coves.community.post.create"


@pytest.fixture
async def world(
    settings: Settings, db: Database, pds: TestPds, lexicons: LexiconRegistry
) -> AsyncIterator[World]:
    async with posting_world(settings, db, pds, lexicons) as w:
        yield w


async def test_signed_in_user_posts_text_readable_at_once(world: World) -> None:
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.community(alice)
        status, body = await world.call(
            CREATE,
            {"community": community.did, "title": "Hello", "content": "First post \U0001f44b"},
            as_=alice,
        )
        assert status == 200, body
        uri, cid = body["uri"], body["cid"]
        assert uri.startswith(f"at://{community.did}/{POST}/")
        # In the community's repo on the PDS, with the poster as author.
        stored = await world.record(uri)
        assert stored["status"] == 200 and stored["cid"] == cid
        assert stored["value"]["author"] == alice.did
        assert stored["value"]["community"] == community.did
        # Readable through Coves the moment the call returned (no stream involved).
        status, got = await world.client.get("social.coves.community.post.get", {"uris": uri})
        assert status == 200, got
        [view] = got["posts"]
        assert view["cid"] == cid and view["title"] == "Hello"
        assert view["author"]["did"] == alice.did
        status, feed = await world.client.get(
            "social.coves.feed.getCommunity", {"community": community.did, "sort": "new"}
        )
        assert [item["post"]["uri"] for item in feed["feed"]] == [uri]
