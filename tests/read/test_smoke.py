from __future__ import annotations

import trio

from tests.read.conftest import Client
from tests.support.factories import Factory


async def test_community_feed_returns_post_views(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        alice = await factory.user("alice.test", display_name="Alice")
        gaming = await factory.community("gaming", description="games")
        uri = await factory.post(gaming, alice, ups=3, downs=1)
        status, body = await client.get("social.coves.feed.getCommunity", {"community": gaming})
        assert status == 200, body
        assert [item["post"]["uri"] for item in body["feed"]] == [uri]
        post = body["feed"][0]["post"]
        assert post["author"] == {"did": alice, "handle": "alice.test", "displayName": "Alice"}
        assert post["community"]["handle"] == "gaming.community.localhost"
        assert post["stats"] == {"upvotes": 3, "downvotes": 1, "score": 2, "commentCount": 0}
        assert "cursor" not in body
