"""Feeds: getCommunity (both NSIDs), getTimeline, getDiscover, actor.getPosts."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import trio

from coves.context import AppContext
from coves.db import Database
from coves.read.snapshots import SnapshotStore
from tests.read.conftest import Client
from tests.support.factories import BLOB_CID, NOW, Factory, blob

COMMUNITY_FEED = "social.coves.feed.getCommunity"
LEGACY_FEED = "social.coves.communityFeed.getCommunity"
TIMELINE = "social.coves.feed.getTimeline"
DISCOVER = "social.coves.feed.getDiscover"
ACTOR_POSTS = "social.coves.actor.getPosts"
H = timedelta(hours=1)


def uris(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["post"]["uri"] for item in body["feed"]]


async def page_all(
    client: Client,
    nsid: str,
    params: dict,
    viewer: str | None = None,  # type: ignore[type-arg]
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        status, body = await client.get(nsid, query, viewer=viewer)
        assert status == 200, body
        pages.append(uris(body))
        cursor = body.get("cursor")
        if not cursor:
            return pages
        assert len(pages) < 100


# -- parameters and errors ------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"sort": "best"},
        {"sort": "top", "timeframe": "decade"},
    ],
)
async def test_bad_feed_parameters_are_400(
    client: Client, factory: Factory, params: dict[str, str]
) -> None:
    with trio.fail_after(20):
        community = await factory.community("gaming")
        for nsid in (COMMUNITY_FEED, DISCOVER):
            status, body = await client.get(nsid, {"community": community, **params})
            assert status == 400, body
            assert body["error"] == "InvalidRequest"


async def test_community_feed_identifier_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        status, body = await client.get(COMMUNITY_FEED, {})
        assert (status, body["error"]) == (400, "InvalidRequest")
        for bad in ("not an identifier", "!gaming", "!bad_name@localhost", "did:nope"):
            status, body = await client.get(COMMUNITY_FEED, {"community": bad})
            assert (status, body["error"]) == (400, "InvalidRequest"), bad
        status, body = await client.get(COMMUNITY_FEED, {"community": "did:plc:missing"})
        assert (status, body["error"]) == (404, "CommunityNotFound")


@pytest.mark.parametrize("state", ["unverified", "rejected", "deleted", "deactivated"])
async def test_hidden_communities_are_not_found(
    client: Client, factory: Factory, state: str
) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        community = await factory.community(
            "hidden",
            verification=state if state in ("unverified", "rejected") else "verified",
            deleted=state == "deleted",
            active=state != "deactivated",
        )
        await factory.post(community, author)
        status, body = await client.get(COMMUNITY_FEED, {"community": community})
        assert (status, body["error"]) == (404, "CommunityNotFound")
        status, body = await client.get(DISCOVER, {})
        assert status == 200 and body["feed"] == []


async def test_both_nsids_and_all_identifier_forms(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        community = await factory.community("Gaming")
        uri = await factory.post(community, author)
        for nsid in (COMMUNITY_FEED, LEGACY_FEED):
            for ident in (
                community,
                "gaming.community.localhost",
                "@Gaming.Community.LOCALHOST",
                "!gaming@localhost",
                "!GAMING@LocalHost",
            ):
                status, body = await client.get(nsid, {"community": ident})
                assert status == 200, (nsid, ident, body)
                assert uris(body) == [uri]


# -- ordering -------------------------------------------------------------------


async def test_sorts_order_posts(client: Client, factory: Factory) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        c = await factory.community("c")
        old_popular = await factory.post(c, author, created_at=NOW - 48 * H, ups=1000)
        new_zero = await factory.post(c, author, created_at=NOW)
        mid = await factory.post(c, author, created_at=NOW - 2 * H, ups=10)
        split = await factory.post(c, author, created_at=NOW - 3 * H, ups=6, downs=5)
        base = {"community": c}
        _, hot = await client.get(COMMUNITY_FEED, base)
        # 1000 votes two days old (log10 = 3 -> 37.5 h) loses to a 2 h old post with 10.
        # mid: 1 - 2/12.5; new: 0; split (score 1): 0 - 3/12.5; old: 3 - 48/12.5.
        assert uris(hot) == [mid, new_zero, split, old_popular]
        _, new = await client.get(COMMUNITY_FEED, {**base, "sort": "new"})
        assert uris(new) == [new_zero, mid, split, old_popular]
        _, top_day = await client.get(COMMUNITY_FEED, {**base, "sort": "top"})
        assert uris(top_day) == [mid, split, new_zero]  # default timeframe: day
        _, top_all = await client.get(COMMUNITY_FEED, {**base, "sort": "top", "timeframe": "all"})
        assert uris(top_all) == [old_popular, mid, split, new_zero]
        _, top_hour = await client.get(COMMUNITY_FEED, {**base, "sort": "top", "timeframe": "hour"})
        assert uris(top_hour) == [new_zero]
        _, contro = await client.get(COMMUNITY_FEED, {**base, "sort": "controversial"})
        assert uris(contro)[0] == split


async def test_new_paging_has_no_cursor_on_last_page(client: Client, factory: Factory) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        c = await factory.community("c")
        made = await factory.posts(c, author, [(NOW - i * H, 0, 0) for i in range(40)])
        pages = await page_all(client, COMMUNITY_FEED, {"community": c, "sort": "new"})
        assert [len(p) for p in pages] == [15, 15, 10]
        assert [u for page in pages for u in page] == made  # made newest first


# -- stable paging ----------------------------------------------------------------


@pytest.mark.parametrize("sort", ["hot", "top", "new"])
async def test_paging_is_stable_while_votes_and_posts_arrive(
    client: Client, factory: Factory, db: Database, sort: str
) -> None:
    rng = random.Random(5)
    with trio.fail_after(60):
        author = await factory.user("a.test")
        c = await factory.community("busy")
        specs = [
            (NOW - timedelta(minutes=rng.randrange(600)), rng.randrange(30), 0) for _ in range(500)
        ]
        original = set(await factory.posts(c, author, specs))
        voters = [f"did:plc:live{i}" for i in range(20)]
        pages: list[list[str]] = []
        done = trio.Event()

        async def churn() -> None:
            targets = sorted(original)
            changes = 0
            while not done.is_set():
                for _ in range(5):
                    await factory.vote(rng.choice(voters), rng.choice(targets), rng.choice((1, -1)))
                await factory.post(c, author, created_at=NOW)
                changes += 1
                await trio.sleep(0)
            assert changes > 0

        async with trio.open_nursery() as nursery:
            cursor = None
            params = {"community": c, "sort": sort, "limit": "50"}
            if sort == "top":
                params["timeframe"] = "all"
            while True:
                query = dict(params, **({"cursor": cursor} if cursor else {}))
                status, body = await client.get(COMMUNITY_FEED, query)
                assert status == 200, body
                pages.append(uris(body))
                if len(pages) == 1:
                    # From the first page on: a post made before it is rightly on it.
                    nursery.start_soon(churn)
                cursor = body.get("cursor")
                if not cursor:
                    break
                await trio.sleep(0.01)  # let the churn interleave
            done.set()
        seen = [u for page in pages for u in page]
        assert len(seen) == len(set(seen)), "a post appeared twice"
        assert set(seen) == original, "paging skipped or added posts"
        assert all(len(p) == 50 for p in pages)
        # The churn really moved things while we paged: live paging would have broken.
        order = {
            "hot": "hot_rank DESC",
            "top": "score DESC, ranked_at DESC",
            "new": "ranked_at DESC",
        }
        live = [
            r["uri"]
            for r in await db.fetch(
                f"SELECT uri FROM posts WHERE community_did = %s ORDER BY {order[sort]}, uri DESC",
                (c,),
            )
        ]
        assert len(live) > len(original)
        assert [u for u in live if u in original] != seen or sort == "new"


async def test_snapshot_is_shared_and_capped(
    client: Client, factory: Factory, read_ctx: AppContext
) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        c = await factory.community("c")
        await factory.posts(c, author, [(NOW - i * H, 0, 0) for i in range(60)])
        read_ctx.read.snapshot_size = 50
        pages = await page_all(client, COMMUNITY_FEED, {"community": c, "limit": "20"})
        assert [len(p) for p in pages] == [20, 20, 10]
        _, again = await client.get(COMMUNITY_FEED, {"community": c, "limit": "20"})
        assert uris(again) == pages[0]


# -- cursors ------------------------------------------------------------------------


async def test_tampered_foreign_and_expired_cursors(
    client: Client, factory: Factory, read_ctx: AppContext, db: Database
) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        c1 = await factory.community("one")
        c2 = await factory.community("two")
        for c in (c1, c2):
            await factory.posts(c, author, [(NOW - i * H, 0, 0) for i in range(5)])
        _, body = await client.get(COMMUNITY_FEED, {"community": c1, "limit": "2"})
        cursor = body["cursor"]
        _, new_body = await client.get(
            COMMUNITY_FEED, {"community": c1, "limit": "2", "sort": "new"}
        )
        bad = [
            cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
            "garbage",
            "a.b",
            "x" * 2000,
        ]
        for value in bad:
            status, err = await client.get(
                COMMUNITY_FEED, {"community": c1, "limit": "2", "cursor": value}
            )
            assert (status, err["error"]) == (400, "InvalidCursor"), value[:40]
        status, err = await client.get(COMMUNITY_FEED, {"community": c1, "cursor": "x" * 5000})
        assert status == 400  # over the lexicon's maxLength
        foreign = [
            ({"community": c2}, cursor),  # another community
            ({"community": c1, "sort": "top"}, cursor),  # another sort
            ({"community": c1, "sort": "new"}, cursor),  # snapshot cursor on keyset sort
            ({"community": c1}, new_body["cursor"]),  # keyset cursor on snapshot sort
        ]
        for params, value in foreign:
            status, err = await client.get(
                COMMUNITY_FEED, {**params, "limit": "2", "cursor": value}
            )
            assert (status, err["error"]) == (400, "InvalidCursor"), params
        status, err = await client.get(DISCOVER, {"cursor": cursor})
        assert (status, err["error"]) == (400, "InvalidCursor")

        # Expired: the snapshot is gone from memory and from the database.
        read_ctx.read.replace_snapshots(SnapshotStore(db, ttl_seconds=0.0))
        await db.execute("DELETE FROM listing_snapshots")
        status, err = await client.get(
            COMMUNITY_FEED, {"community": c1, "limit": "2", "cursor": cursor}
        )
        assert (status, err["error"]) == (400, "InvalidCursor")
        assert "start again" in err["message"]


# -- visibility, blocks, deactivation, viewer state ----------------------------------


async def test_private_community_feed_only_for_subscribers(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        member = await factory.user("m.test")
        outsider = await factory.user("o.test")
        c = await factory.community("secret", visibility="private")
        uri = await factory.post(c, author)
        await factory.subscribe(member, c)
        for viewer in (None, outsider):
            status, body = await client.get(COMMUNITY_FEED, {"community": c}, viewer=viewer)
            assert (status, body["error"]) == (404, "CommunityNotFound")
        status, body = await client.get(COMMUNITY_FEED, {"community": c}, viewer=member)
        assert status == 200 and uris(body) == [uri]


async def test_deleted_posts_and_deactivated_authors_are_hidden(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        alive = await factory.user("alive.test")
        gone = await factory.user("gone.test")
        c = await factory.community("c")
        keep = await factory.post(c, alive, created_at=NOW - H)
        deleted = await factory.post(c, alive, created_at=NOW - 2 * H)
        await factory.post(c, gone, created_at=NOW - 3 * H)
        await factory.delete_post(deleted)
        await factory.set_active(gone, False)
        for sort in ("hot", "new"):
            _, body = await client.get(COMMUNITY_FEED, {"community": c, "sort": sort})
            assert uris(body) == [keep], sort
            _, body = await client.get(DISCOVER, {"sort": sort})
            assert uris(body) == [keep], sort


async def test_viewer_vote_state(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        me = await factory.user("me.test")
        c = await factory.community("c")
        up = await factory.post(c, author, created_at=NOW - H)
        down = await factory.post(c, author, created_at=NOW - 2 * H)
        none = await factory.post(c, author, created_at=NOW - 3 * H)
        up_vote = await factory.vote(me, up, 1)
        await factory.vote(me, down, 1)
        down_vote = await factory.vote(me, down, -1)  # replaces the up vote
        _, body = await client.get(COMMUNITY_FEED, {"community": c, "sort": "new"}, viewer=me)
        views = {item["post"]["uri"]: item["post"] for item in body["feed"]}
        assert views[up]["viewer"] == {"vote": "up", "voteUri": up_vote}
        assert views[down]["viewer"] == {"vote": "down", "voteUri": down_vote}
        assert views[none]["viewer"] == {}
        _, anon = await client.get(COMMUNITY_FEED, {"community": c, "sort": "new"})
        assert all("viewer" not in item["post"] for item in anon["feed"])


async def test_invalid_credentials_are_401_even_on_optional_routes(client: Client) -> None:
    with trio.fail_after(10):
        response = await client._client.get(
            "/xrpc/social.coves.feed.getDiscover", headers={"Authorization": "Bearer junk"}
        )
        assert response.status_code == 401


async def test_blocked_communities_are_excluded_everywhere(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        me = await factory.user("me.test")
        liked = await factory.community("liked")
        hated = await factory.community("hated")
        keep = await factory.post(liked, author, created_at=NOW - H)
        drop = await factory.post(hated, author, created_at=NOW - 2 * H)
        for c in (liked, hated):
            await factory.subscribe(me, c)
        await factory.block(me, hated)
        for nsid in (DISCOVER, TIMELINE):
            for sort in ("hot", "new"):
                _, body = await client.get(nsid, {"sort": sort}, viewer=me)
                assert uris(body) == [keep], (nsid, sort)
        _, body = await client.get(COMMUNITY_FEED, {"community": hated}, viewer=me)
        assert uris(body) == []
        _, body = await client.get(ACTOR_POSTS, {"actor": author, "sort": "new"}, viewer=me)
        assert uris(body) == [keep]
        _, anon = await client.get(DISCOVER, {"sort": "new"})
        assert uris(anon) == [keep, drop]


# -- timeline ------------------------------------------------------------------------


async def test_timeline_requires_auth(client: Client) -> None:
    with trio.fail_after(10):
        status, body = await client.get(TIMELINE, {})
        assert (status, body["error"]) == (401, "AuthenticationRequired")


async def test_timeline_shows_subscriptions_once(client: Client, factory: Factory) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        me = await factory.user("me.test")
        lonely = await factory.user("lonely.test")
        a = await factory.community("a")
        b = await factory.community("b")
        other = await factory.community("other")
        secret = await factory.community("secret", visibility="private")
        pa = await factory.post(a, author, created_at=NOW - H)
        pb = await factory.post(b, author, created_at=NOW - 2 * H)
        ps = await factory.post(secret, author, created_at=NOW - 3 * H)
        await factory.post(other, author, created_at=NOW)
        await factory.subscribe(me, a)
        await factory.subscribe(me, a)  # a duplicate subscription record
        await factory.subscribe(me, b)
        await factory.subscribe(me, secret)
        for sort in ("hot", "new", "top", "controversial"):
            _, body = await client.get(TIMELINE, {"sort": sort}, viewer=me)
            assert sorted(uris(body)) == sorted([pa, pb, ps]), sort
        _, body = await client.get(TIMELINE, {"sort": "new"}, viewer=me)
        assert uris(body) == [pa, pb, ps]
        _, body = await client.get(TIMELINE, {}, viewer=lonely)
        assert body == {"feed": []}
        # Another viewer cannot continue my timeline with my cursor.
        _, first = await client.get(TIMELINE, {"limit": "1"}, viewer=me)
        status, err = await client.get(
            TIMELINE, {"limit": "1", "cursor": first["cursor"]}, viewer=lonely
        )
        assert (status, err["error"]) == (400, "InvalidCursor")


# -- discover and actor posts ----------------------------------------------------------


async def test_discover_only_public_verified_communities(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("a.test")
        public = await factory.community("public")
        shown = await factory.post(public, author)
        hidden: list[dict[str, str]] = [
            {"visibility": "private"},
            {"visibility": "unlisted"},
            {"verification": "unverified"},
        ]
        for n, kwargs in enumerate(hidden):
            c = await factory.community(f"hidden{n}", **kwargs)  # type: ignore[arg-type]
            await factory.post(c, author)
        for sort in ("hot", "new", "top", "controversial"):
            _, body = await client.get(DISCOVER, {"sort": sort})
            assert uris(body) == [shown], sort


async def test_actor_posts(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user("writer.test")
        other = await factory.user("other.test")
        c = await factory.community("c")
        secret = await factory.community("secret", visibility="private")
        mine = await factory.post(c, author, created_at=NOW - H)
        await factory.post(secret, author, created_at=NOW)
        await factory.post(c, other, created_at=NOW)
        for actor in (author, "writer.test", "Writer.Test"):
            status, body = await client.get(ACTOR_POSTS, {"actor": actor, "sort": "new"})
            assert status == 200 and uris(body) == [mine], actor
        status, body = await client.get(ACTOR_POSTS, {"actor": "nobody.test"})
        assert (status, body["error"]) == (404, "NotFound")
        status, body = await client.get(ACTOR_POSTS, {"actor": "not a handle"})
        assert (status, body["error"]) == (400, "InvalidRequest")
        status, body = await client.get(ACTOR_POSTS, {})
        assert (status, body["error"]) == (400, "InvalidRequest")
        await factory.set_active(author, False)
        status, body = await client.get(ACTOR_POSTS, {"actor": author})
        assert (status, body["error"]) == (404, "NotFound")


async def test_post_view_shape_and_blob_urls(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        author = await factory.user(
            "a.test", display_name="A", avatar=blob(), pds_url="https://alice.pds"
        )
        c = await factory.community("pics", avatar=blob(), display_name="Pictures")
        embed = {
            "$type": "social.coves.embed.images",
            "images": [{"image": blob(), "alt": "cat"}],
        }
        uri = await factory.post(c, author, embed=embed, title="T", content="body")
        _, body = await client.get(COMMUNITY_FEED, {"community": c})
        post = body["feed"][0]["post"]
        esc_c = c.replace(":", "%3A")
        local = "http://localhost:3001/xrpc/com.atproto.sync.getBlob"
        assert post["uri"] == uri
        assert post["rkey"] == uri.rsplit("/", 1)[1]
        assert post["title"] == "T" and post["text"] == "body"
        assert post["record"]["title"] == "T"
        # The view type the clients switch on, with URLs for the image's renditions.
        assert post["embed"] == {
            "$type": "social.coves.embed.images#view",
            "images": [
                {
                    "thumb": f"{local}?did={esc_c}&cid={BLOB_CID}",
                    "fullsize": f"{local}?did={esc_c}&cid={BLOB_CID}",
                    "alt": "cat",
                }
            ],
        }
        assert post["community"] == {
            "did": c,
            "handle": "pics.community.localhost",
            "name": "pics",
            "displayName": "Pictures",
            "avatar": f"{local}?did={esc_c}&cid={BLOB_CID}",
        }
        esc_a = author.replace(":", "%3A")
        assert post["author"]["avatar"] == (
            f"https://alice.pds/xrpc/com.atproto.sync.getBlob?did={esc_a}&cid={BLOB_CID}"
        )
        for key in ("createdAt", "indexedAt"):
            assert post[key].endswith("Z")


@pytest.mark.parametrize("sort", ["hot", "top", "new", "controversial"])
async def test_timeline_pages_across_communities_in_global_order(
    client: Client, factory: Factory, db: Database, sort: str
) -> None:
    rng = random.Random(11)
    with trio.fail_after(40):
        author = await factory.user("a.test")
        me = await factory.user("me.test")
        made: set[str] = set()
        for name in ("alpha", "beta", "gamma"):
            c = await factory.community(name)
            await factory.subscribe(me, c)
            specs = [
                (NOW - timedelta(minutes=rng.randrange(600)), rng.randrange(40), rng.randrange(9))
                for _ in range(30)
            ]
            made |= set(await factory.posts(c, author, specs))
        await factory.post(await factory.community("other"), author)  # not subscribed
        params = {"sort": sort, "limit": "7"}
        if sort == "top":
            params["timeframe"] = "all"
        pages = await page_all(client, TIMELINE, params, viewer=me)
        seen = [u for page in pages for u in page]
        assert len(seen) == len(set(seen)) == 90
        assert set(seen) == made
        order = {
            "hot": "hot_rank DESC",
            "top": "score DESC, ranked_at DESC",
            "new": "ranked_at DESC",
            "controversial": "controversy_rank DESC, ranked_at DESC",
        }[sort]
        expected = [
            r["uri"]
            for r in await db.fetch(
                f"SELECT uri FROM posts WHERE uri = ANY(%s) ORDER BY {order}, uri DESC",
                (list(made),),
            )
        ]
        assert seen == expected
