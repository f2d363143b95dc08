"""Contract tests: each read call the real clients make, with their parameters.

The calls and what each client decodes are in the clients' contract (web
client §8.1, mobile app §8.2 with its strict decoder, aggregator bots §8.3).
Every test sends one call as that client sends it and asserts the response
carries everything that client reads; the client fixture also validates
every success against the output lexicon.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio

from tests.read.conftest import Client
from tests.support.factories import BLOB_CID, NOW, Factory, blob

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
WEB, MOBILE, BOT = "web", "mobile", "bot"


def is_int(value: Any) -> bool:
    return type(value) is int


def check_post_view(view: dict[str, Any]) -> None:
    """The mobile decoder's bar (a missing or null field fails a whole page) plus what
    the web client reads."""
    for key in ("uri", "cid", "rkey", "createdAt", "indexedAt"):
        assert isinstance(view.get(key), str) and view[key], key
    assert ISO.match(view["createdAt"]) and ISO.match(view["indexedAt"])
    assert view["uri"].endswith("/" + view["rkey"])
    author, community = view["author"], view["community"]
    assert author["did"].startswith("did:") and isinstance(author["handle"], str)
    for key in ("did", "handle", "name"):
        assert isinstance(community.get(key), str) and community[key], key
    stats = view["stats"]
    for key in ("upvotes", "downvotes", "score", "commentCount"):
        assert is_int(stats.get(key)), key
    if "embed" in view:
        check_embed(view["embed"])


def check_embed(embed: dict[str, Any]) -> None:
    kind = embed["$type"]
    assert kind.endswith("#view"), kind
    if kind == "social.coves.embed.images#view":
        for image in embed["images"]:
            assert image["thumb"].startswith("http") and image["fullsize"].startswith("http")
    elif kind == "social.coves.embed.external#view":
        assert isinstance(embed["external"]["uri"], str)
        if "thumb" in embed["external"]:
            assert embed["external"]["thumb"].startswith("http")
    elif kind == "social.coves.embed.post#view":
        assert embed["post"]["uri"].startswith("at://") and embed["post"]["cid"]


def check_comment_view(view: dict[str, Any]) -> None:
    for key in ("uri", "cid", "createdAt", "indexedAt"):
        assert isinstance(view.get(key), str), key
    assert view["post"]["uri"] and view["post"]["cid"]
    for key in ("upvotes", "downvotes", "score", "replyCount"):
        assert is_int(view["stats"][key]), key
    if "record" in view:
        assert isinstance(view["record"]["content"], str)
    if view.get("isDeleted"):
        assert isinstance(view["deletionReason"], str)
    else:
        assert view["author"]["did"].startswith("did:")


def check_community_view(view: dict[str, Any]) -> None:
    assert view["did"].startswith("did:") and isinstance(view["name"], str)
    for key in ("subscriberCount", "memberCount", "postCount"):
        assert is_int(view[key]), key


def check_threads(nodes: list[dict[str, Any]]) -> int:
    count = 0
    for node in nodes:
        check_comment_view(node["comment"])
        count += 1 + check_threads(node.get("replies", []))
    return count


class Shop:
    """A small world with every kind of embed, a thread, a profile and blocks."""

    community: str
    handle: str
    posts: list[str]
    thread: str
    top: str
    me: str
    author: str


@pytest.fixture
async def shop(factory: Factory) -> Shop:
    s = Shop()
    s.me = await factory.user("me.test")
    s.author = await factory.user("writer.test", display_name="Writer", avatar=blob())
    s.community = await factory.community("news", description="the news", avatar=blob())
    s.handle = "news.community.localhost"
    embeds: list[dict[str, Any] | None] = [
        {"$type": "social.coves.embed.images", "images": [{"image": blob(), "alt": "a"}]},
        {
            "$type": "social.coves.embed.external",
            "external": {
                "uri": "https://example.com/story",
                "title": "Story",
                "thumb": blob(),
                "embedType": "article",
                "domain": "example.com",
            },
        },
        {
            "$type": "social.coves.embed.post",
            "post": {"uri": "at://did:plc:x/app.bsky.feed.post/3k", "cid": BLOB_CID},
        },
        None,
    ]
    s.posts = []
    for i, embed in enumerate(embeds):
        s.posts.append(
            await factory.post(s.community, s.author, embed=embed, content=f"words number{i}")
        )
    s.thread = s.posts[-1]
    s.top = await factory.comment(s.thread, s.me, content="first")
    await factory.comment(s.thread, s.author, parent=s.top, content="reply")
    gone = await factory.comment(s.thread, s.me, deleted=True)
    await factory.comment(s.thread, s.author, parent=gone, content="orphan")
    await factory.subscribe(s.me, s.community)
    await factory.vote(s.me, s.posts[0], 1)
    return s


FEED_CALLS = [
    # (client, nsid, params, signed in)
    (WEB, "social.coves.feed.getDiscover", {"sort": "hot", "limit": "20"}, False),
    (
        WEB,
        "social.coves.feed.getDiscover",
        {"sort": "top", "timeframe": "all", "limit": "20"},
        False,
    ),
    (WEB, "social.coves.feed.getTimeline", {"sort": "new", "limit": "20"}, True),
    (
        WEB,
        "social.coves.communityFeed.getCommunity",
        {"community": "HANDLE", "sort": "hot", "limit": "20"},
        False,
    ),
    (MOBILE, "social.coves.feed.getTimeline", {"sort": "hot", "limit": "15"}, True),
    (MOBILE, "social.coves.feed.getDiscover", {"sort": "hot", "limit": "15"}, False),
    (
        MOBILE,
        "social.coves.communityFeed.getCommunity",
        {"community": "DID", "sort": "hot", "limit": "15"},
        True,
    ),
    (
        BOT,
        "social.coves.communityFeed.getCommunity",
        {"community": "HANDLE", "sort": "new", "limit": "50"},
        False,
    ),
    (WEB, "social.coves.actor.getPosts", {"actor": "AUTHOR", "limit": "20"}, False),
    (
        MOBILE,
        "social.coves.actor.getPosts",
        {"actor": "AUTHOR", "limit": "15", "filter": "posts_with_replies", "community": "DID"},
        True,
    ),
]


@pytest.mark.parametrize(("who", "nsid", "params", "signed_in"), FEED_CALLS)
async def test_feed_calls(
    client: Client,
    shop: Shop,
    who: str,
    nsid: str,
    params: dict[str, str],
    signed_in: bool,
) -> None:
    fill = {"HANDLE": shop.handle, "DID": shop.community, "AUTHOR": shop.author}
    query = {k: fill.get(v, v) for k, v in params.items()}
    with trio.fail_after(20):
        status, body = await client.get(nsid, query, viewer=shop.me if signed_in else None)
    assert status == 200, body
    assert isinstance(body["feed"], list) and len(body["feed"]) == len(shop.posts)
    for item in body["feed"]:
        check_post_view(item["post"])
        if signed_in:
            assert isinstance(item["post"]["viewer"], dict)
            # Feed items read post.community.viewer.subscribed (mobile).
            assert item["post"]["community"]["viewer"]["subscribed"] is True
    by_uri = {item["post"]["uri"]: item["post"] for item in body["feed"]}
    kinds = {by_uri[uri].get("embed", {}).get("$type") for uri in shop.posts}
    assert kinds == {
        "social.coves.embed.images#view",
        "social.coves.embed.external#view",
        "social.coves.embed.post#view",
        None,
    }
    if who == BOT:
        # What the bluesky-topics aggregator inspects.
        external = by_uri[shop.posts[1]]
        assert external["embed"]["external"]["uri"] == "https://example.com/story"
        assert by_uri[shop.posts[2]]["embed"]["post"]["uri"].startswith("at://")


async def test_sidebar_list_with_limit_500_is_clamped(client: Client, shop: Shop) -> None:
    # The web sidebar's stats call.
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.community.list", {"limit": "500", "sort": "popular"}
        )
    assert status == 200, body
    assert [c["did"] for c in body["communities"]] == [shop.community]
    for view in body["communities"]:
        check_community_view(view)


@pytest.mark.parametrize(
    ("who", "params", "signed_in"),
    [
        (WEB, {"sort": "active", "visibility": "public", "limit": "50", "category": "x"}, False),
        (WEB, {"sort": "new", "limit": "50", "language": "en", "subscribed": "false"}, False),
        (MOBILE, {"limit": "50", "sort": "popular", "subscribed": "true"}, True),
    ],
)
async def test_community_list_calls(
    client: Client, shop: Shop, who: str, params: dict[str, str], signed_in: bool
) -> None:
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.community.list", params, viewer=shop.me if signed_in else None
        )
    assert status == 200, body
    assert isinstance(body["communities"], list)
    for view in body["communities"]:
        check_community_view(view)
    if signed_in:
        assert [c["viewer"]["subscribed"] for c in body["communities"]] == [True]


async def test_community_get_and_search_calls(client: Client, shop: Shop) -> None:
    with trio.fail_after(20):
        for ident in (shop.handle, shop.community, "news", "!news@localhost", "news@localhost"):
            status, body = await client.get("social.coves.community.get", {"community": ident})
            assert status == 200, (ident, body)
            check_community_view(body)
            assert isinstance(body["createdAt"], str) and body["hostedByDid"]
        params = {
            "q": "news",
            "visibility": "public",
            "limit": "20",
            "category": "",
            "language": "",
        }
        status, body = await client.get("social.coves.community.search", params)
    assert status == 200, body
    assert [c["did"] for c in body["communities"]] == [shop.community]
    check_community_view(body["communities"][0])


@pytest.mark.parametrize(
    ("who", "params", "signed_in"),
    [
        (WEB, {"sort": "hot", "depth": "10", "limit": "50"}, True),
        (MOBILE, {"sort": "hot", "depth": "10", "limit": "50", "timeframe": "day"}, True),
        (MOBILE, {"sort": "new", "depth": "10", "limit": "50"}, False),
    ],
)
async def test_get_comments_calls(
    client: Client, shop: Shop, who: str, params: dict[str, str], signed_in: bool
) -> None:
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.community.comment.getComments",
            {"post": shop.thread, **params},
            viewer=shop.me if signed_in else None,
        )
    assert status == 200, body
    check_post_view(body["post"])
    assert check_threads(body["comments"]) == 4


async def test_get_comments_parent_rkey_subtree(client: Client, shop: Shop) -> None:
    rkey = shop.top.rsplit("/", 1)[1]
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.community.comment.getComments",
            {"post": shop.thread, "parentRkey": rkey, "sort": "hot", "depth": "10", "limit": "50"},
        )
        assert status == 200, body
        assert [node["comment"]["uri"] for node in body["comments"]] == [shop.top]
        assert check_threads(body["comments"]) == 2
        status, body = await client.get(
            "social.coves.community.comment.getComments",
            {"post": shop.thread, "parentRkey": "3kzzzzzzzzzzz"},
        )
    assert (status, body["error"]) == (404, "ParentNotFound")


async def test_post_get_call(client: Client, shop: Shop, factory: Factory) -> None:
    missing = shop.posts[0].rsplit("/", 1)[0] + "/3kmissing0000"
    deleted = await factory.post(shop.community, shop.author, deleted=True)
    blocked_author = await factory.user("blocked.test")
    by_blocked = await factory.post(shop.community, blocked_author)
    await factory.user_block(shop.me, blocked_author)
    uris = [*shop.posts, missing, deleted, by_blocked, shop.posts[0]]
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.community.post.get", {"uris": uris}, viewer=shop.me
        )
    assert status == 200, body
    entries = body["posts"]
    assert [e["uri"] for e in entries] == uris  # one per requested URI, in order
    for entry in entries:
        if entry["$type"] == "social.coves.community.post.get#postView":
            check_post_view(entry)
        else:
            assert entry.get("notFound") is True or entry.get("blocked") is True, entry
    assert entries[-2]["blocked"] is True and entries[-2]["blockedBy"] == "author"
    assert entries[-2]["author"]["did"] == blocked_author


async def test_profile_and_actor_comment_calls(
    client: Client, shop: Shop, factory: Factory
) -> None:
    await factory.db.execute(
        "UPDATE users SET profile_created_at = %s WHERE did = %s",
        (NOW.replace(year=2024), shop.author),
    )
    block = await factory.user_block(shop.me, shop.author)
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.actor.getProfile", {"actor": "writer.test"}, viewer=shop.me
        )
        assert status == 200, body
        assert body["did"].startswith("did:") and ISO.match(body["createdAt"])
        assert body["createdAt"].startswith("2024-")  # the profile record's date
        assert set(body["stats"]) == {
            "postCount",
            "commentCount",
            "communityCount",
            "reputation",
            "membershipCount",
        }
        assert all(is_int(v) for v in body["stats"].values())
        assert body["viewer"]["blocking"] == block == body["viewer"]["blockUri"]
        assert body["viewer"]["blocked"] is True and body["viewer"]["blockedBy"] is False
        status, body = await client.get(
            "social.coves.actor.getComments", {"actor": shop.me, "limit": "20"}
        )
        assert status == 200, body
        assert [c["uri"] for c in body["comments"]] == [shop.top]
        for view in body["comments"]:
            check_comment_view(view)


async def test_block_list_calls(client: Client, shop: Shop, factory: Factory) -> None:
    community_block = await factory.block(shop.me, shop.community)
    user_block = await factory.user_block(shop.me, shop.author)
    with trio.fail_after(20):
        status, body = await client.get(
            "social.coves.actor.getBlockedUsers", {"limit": "50", "offset": "0"}, viewer=shop.me
        )
        assert status == 200, body
        assert body["blocks"] == [
            {
                "blockedDid": shop.author,
                "recordUri": user_block,
                "recordCid": "bafyreiublock",
                "blockedAt": body["blocks"][0]["blockedAt"],
            }
        ]
        status, body = await client.get(
            "social.coves.community.getBlockedCommunities", {"limit": "50"}, viewer=shop.me
        )
        assert status == 200, body
        assert [b["communityDid"] for b in body["blocks"]] == [shop.community]
        assert body["blocks"][0]["recordUri"] == community_block
        for nsid in (
            "social.coves.actor.getBlockedUsers",
            "social.coves.community.getBlockedCommunities",
        ):
            status, body = await client.get(nsid, {})
            assert (status, body["error"]) == (401, "AuthenticationRequired"), nsid
