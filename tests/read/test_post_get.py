"""community.post.get: views, not-found entries and tombstones."""

from __future__ import annotations

import trio

from tests.read.conftest import Client
from tests.support.factories import POST, Factory

GET = "social.coves.community.post.get"


async def test_post_get_entries(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        gone_author = await factory.user("gone.test")
        me = await factory.user("me.test")
        c = await factory.community("c")
        blocked_c = await factory.community("blocked")
        live = await factory.post(c, author)
        deleted = await factory.post(c, author)
        await factory.delete_post(deleted)
        hidden = await factory.post(c, gone_author)
        await factory.set_active(gone_author, False)
        blocked = await factory.post(blocked_c, author)
        await factory.block(me, blocked_c)
        missing = f"at://{c}/{POST}/3kaaaaaaaaaaa"
        tombstoned = f"at://{c}/{POST}/3kbbbbbbbbbbb"
        await factory.tombstone_only(tombstoned)
        vote = await factory.vote(me, live, 1)
        order = [missing, live, deleted, hidden, blocked, tombstoned]
        status, body = await client.get(GET, {"uris": order}, viewer=me)
        assert status == 200, body
        posts = body["posts"]
        assert [p["uri"] for p in posts] == order
        assert posts[0]["notFound"] is True
        assert posts[1]["cid"] == "bafyreipost"
        # The type the mobile app discriminates live entries on.
        assert posts[1]["$type"] == "social.coves.community.post.get#postView"
        assert posts[1]["viewer"] == {"vote": "up", "voteUri": vote}
        assert posts[2]["deleted"] is True and posts[2]["deletedAt"].endswith("Z")
        assert posts[3]["unavailable"] is True and "not active" in posts[3]["reason"]
        assert posts[4]["blocked"] is True and posts[4]["blockedBy"] == "community"
        assert posts[5]["deleted"] is True
        # Every entry that is not a live post carries the flag the clients switch on.
        for entry in (posts[0], posts[2], posts[3], posts[5]):
            assert entry["notFound"] is True, entry
        _, anon = await client.get(GET, {"uris": blocked})
        assert anon["posts"][0]["uri"] == blocked and "author" in anon["posts"][0]


async def test_post_get_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        c = await factory.community("c")
        ok = f"at://{c}/{POST}/3kaaaaaaaaaaa"
        cases = [
            {},
            {"uris": "https://example.com"},
            {"uris": f"at://{c}/{POST}"},
            {"uris": [ok] * 26},
        ]
        for params in cases:
            status, body = await client.get(GET, params)
            assert (status, body["error"]) == (400, "InvalidRequest"), params
        # One entry per requested URI, duplicates included; URIs that cannot name a post
        # (another collection, an unknown handle) are entries, not errors.
        other = f"at://{c}/social.coves.community.comment/3kaaaaaaaaaaa"
        by_handle = "at://handle.test/social.coves.community.post/3kaaaaaaaaaaa"
        status, body = await client.get(GET, {"uris": [ok, ok, other, by_handle]})
        assert status == 200
        assert [p["uri"] for p in body["posts"]] == [ok, ok, other, by_handle]
        assert all(p["notFound"] is True for p in body["posts"])


async def test_private_community_posts_only_for_subscribers(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        member = await factory.user("m.test")
        outsider = await factory.user("o.test")
        secret = await factory.community("secret", visibility="private")
        uri = await factory.post(secret, author)
        await factory.subscribe(member, secret)
        for viewer in (None, outsider):
            _, body = await client.get(GET, {"uris": uri}, viewer=viewer)
            # To outsiders a private community's post does not exist.
            assert body["posts"][0] == {
                "$type": "social.coves.community.post.get#notFoundPost",
                "uri": uri,
                "notFound": True,
            }
        _, body = await client.get(GET, {"uris": uri}, viewer=member)
        assert body["posts"][0]["cid"] == "bafyreipost"
