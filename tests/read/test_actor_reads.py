"""Actor reads: resolveHandle, blocked users and communities, an actor's posts and comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import trio

from coves.context import AppContext
from coves.identity import IdentityResolver
from coves.lexicon.registry import LexiconRegistry
from coves.xrpc.app import create_app
from tests.read.conftest import Client
from tests.support.factories import NOW, Factory, blob
from tests.support.fake_did import PLC_URL, FakeNetwork

RESOLVE = "com.atproto.identity.resolveHandle"
BLOCKED_USERS = "social.coves.actor.getBlockedUsers"
BLOCKED_COMMUNITIES = "social.coves.community.getBlockedCommunities"
ACTOR_COMMENTS = "social.coves.actor.getComments"
ACTOR_POSTS = "social.coves.actor.getPosts"
ELSEWHERE = "did:plc:eeeeeeeeeeeeeeeeeeeeeeee"
H = timedelta(hours=1)


async def test_resolve_handle(
    read_ctx: AppContext, lexicons: LexiconRegistry, factory: Factory
) -> None:
    net = FakeNetwork()
    net.add_plc(ELSEWHERE, None, "elsewhere.example.com")
    resolver = IdentityResolver(fetcher=net.fetcher(), plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    client = Client(create_app(replace(read_ctx, identity=resolver)), lexicons)
    with trio.fail_after(20):
        indexed = await factory.user("known.test")
        for handle in ("known.test", "Known.Test"):
            status, body = await client.get(RESOLVE, {"handle": handle})
            assert (status, body) == (200, {"did": indexed}), handle
        assert net.dns_queries == []  # indexed accounts are answered from the database
        status, body = await client.get(RESOLVE, {"handle": "elsewhere.example.com"})
        assert (status, body) == (200, {"did": ELSEWHERE})
        status, body = await client.get(RESOLVE, {"handle": "nobody.example.com"})
        assert (status, body["error"]) == (400, "HandleNotFound")
        for params in ({}, {"handle": "not a handle"}):
            status, body = await client.get(RESOLVE, params)
            assert (status, body["error"]) == (400, "InvalidRequest"), params


async def test_blocked_users_page_by_offset(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        me = await factory.user("me.test")
        others = [await factory.user(f"u{i}.test") for i in range(5)]
        made = [await factory.user_block(me, other) for other in others]
        await factory.user_block(others[0], me)  # blocks of me are not mine
        await factory.db.execute(
            "UPDATE user_blocks SET deleted_at = now() WHERE uri = %s", (made[2],)
        )
        status, body = await client.get(BLOCKED_USERS, {"limit": "2"}, viewer=me)
        assert status == 200
        first = [b["recordUri"] for b in body["blocks"]]
        status, body = await client.get(BLOCKED_USERS, {"limit": "2", "offset": "2"}, viewer=me)
        second = [b["recordUri"] for b in body["blocks"]]
        assert sorted(first + second) == sorted(made[:2] + made[3:])
        for params in ({"offset": "-1"}, {"limit": "0"}, {"offset": "x"}):
            status, body = await client.get(BLOCKED_USERS, params, viewer=me)
            assert (status, body["error"]) == (400, "InvalidRequest"), params


async def test_blocked_communities_page_by_cursor(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        me = await factory.user("me.test")
        other = await factory.user("other.test")
        made = [await factory.block(me, await factory.community(f"c{i}")) for i in range(5)]
        await factory.block(other, await factory.community("theirs"))
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            status, body = await client.get(BLOCKED_COMMUNITIES, params, viewer=me)
            assert status == 200, body
            seen += [b["recordUri"] for b in body["blocks"]]
            cursor = body.get("cursor")
            if not cursor:
                break
        assert sorted(seen) == sorted(made) and len(seen) == 5
        _, first = await client.get(BLOCKED_COMMUNITIES, {"limit": "2"}, viewer=me)
        for bad in ("garbage", first["cursor"] + "x"):
            status, body = await client.get(BLOCKED_COMMUNITIES, {"cursor": bad}, viewer=me)
            assert (status, body["error"]) == (400, "InvalidCursor")
        # A cursor is the viewer's own.
        status, body = await client.get(
            BLOCKED_COMMUNITIES, {"cursor": first["cursor"]}, viewer=other
        )
        assert (status, body["error"]) == (400, "InvalidCursor")


async def test_actor_comments_newest_first_paged_and_by_community(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(30):
        me = await factory.user("me.test")
        author = await factory.user("a.test")
        c1, c2 = await factory.community("one"), await factory.community("two")
        p1, p2 = await factory.post(c1, author), await factory.post(c2, author)
        made = [
            await factory.comment(p1 if i % 2 else p2, me, created_at=NOW - i * H) for i in range(5)
        ]
        await factory.comment(p1, me, deleted=True)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"actor": "me.test", "limit": "2", **({"cursor": cursor} if cursor else {})}
            status, body = await client.get(ACTOR_COMMENTS, params)
            assert status == 200, body
            seen += [c["uri"] for c in body["comments"]]
            cursor = body.get("cursor")
            if not cursor:
                break
        assert seen == made
        _, body = await client.get(ACTOR_COMMENTS, {"actor": me, "community": "one"})
        assert [c["uri"] for c in body["comments"]] == [made[1], made[3]]
        _, body = await client.get(ACTOR_COMMENTS, {"actor": me, "community": "nowhere"})
        assert body == {"comments": []}
        status, body = await client.get(ACTOR_COMMENTS, {"actor": "nobody.test"})
        assert (status, body["error"]) == (404, "NotFound")
        status, body = await client.get(ACTOR_COMMENTS, {"actor": me, "cursor": "bad"})
        assert (status, body["error"]) == (400, "InvalidCursor")
        # The viewer's votes come with them.
        vote = await factory.vote(author, made[0], 1)
        _, body = await client.get(ACTOR_COMMENTS, {"actor": me, "limit": "1"}, viewer=author)
        assert body["comments"][0]["viewer"] == {"vote": "up", "voteUri": vote}


async def test_actor_posts_filters(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        c1, c2 = await factory.community("one"), await factory.community("two")
        images = {"$type": "social.coves.embed.images", "images": [{"image": blob()}]}
        text = await factory.post(c1, author, created_at=NOW - H)
        media = await factory.post(c2, author, embed=images, created_at=NOW)

        async def feed(**params: str) -> list[str]:
            status, body = await client.get(ACTOR_POSTS, {"actor": author, "sort": "new", **params})
            assert status == 200, body
            return [item["post"]["uri"] for item in body["feed"]]

        assert await feed() == [media, text]
        assert await feed(filter="posts_with_media") == [media]
        assert await feed(filter="posts_no_replies") == [media, text]
        assert await feed(community="one") == [text]
        assert await feed(community="!two@localhost", filter="posts_with_media") == [media]
        assert await feed(community="nowhere") == []
        status, body = await client.get(ACTOR_POSTS, {"actor": author, "community": "!bad"})
        assert (status, body["error"]) == (400, "InvalidRequest")
