"""community.get / community.list / community.search."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trio

from coves.search import trigrams
from tests.read.conftest import Client
from tests.support.factories import BLOB_CID, NOW, Factory, blob

GET = "social.coves.community.get"
LIST = "social.coves.community.list"
SEARCH = "social.coves.community.search"


def dids(body: dict) -> list[str]:  # type: ignore[type-arg]
    return [c["did"] for c in body["communities"]]


async def test_get_by_every_identifier_form(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        c = await factory.community(
            "Gaming", description="games", avatar=blob(), pds_url="https://pds.example"
        )
        for ident in (
            c,
            "gaming.community.localhost",
            "@GAMING.community.localhost",
            "!gaming@localhost",
            "!Gaming@LOCALHOST",
            "gaming@localhost",  # without the "!"
            "Gaming",  # a bare name: a community this instance hosts
        ):
            status, body = await client.get(GET, {"community": ident})
            assert status == 200, (ident, body)
            assert body["did"] == c
        assert body["handle"] == "gaming.community.localhost"
        assert body["displayHandle"] == "!gaming@localhost"
        assert body["name"] == "Gaming"
        assert body["description"] == "games"
        assert body["avatar"] == (
            "https://pds.example/xrpc/com.atproto.sync.getBlob"
            f"?did={c.replace(':', '%3A')}&cid={BLOB_CID}"
        )
        assert body["avatarCid"] == BLOB_CID
        assert body["recordUri"] == f"at://{c}/social.coves.community.profile/self"
        assert body["hostedByDid"] == "did:web:localhost"
        assert "viewer" not in body


async def test_get_foreign_scoped_identifier(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        foreign = await factory.community("rust", hosted_by="did:web:other.example")
        await factory.community("rust")  # our own "rust" must not answer for other.example
        status, body = await client.get(GET, {"community": "!rust@Other.Example"})
        assert status == 200 and body["did"] == foreign
        status, body = await client.get(GET, {"community": "!rust@third.example"})
        assert (status, body["error"]) == (404, "NotFound")


async def test_get_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        status, body = await client.get(GET, {})
        assert (status, body["error"]) == (400, "InvalidRequest")
        for bad in ("no dots", "!name", "!na me@localhost", "!x@bad_domain", "did:", "-x-"):
            status, body = await client.get(GET, {"community": bad})
            assert (status, body["error"]) == (400, "InvalidRequest"), bad
        for unknown in ("did:plc:unknown", "nodots", "nodots@localhost"):
            status, body = await client.get(GET, {"community": unknown})
            assert (status, body["error"]) == (404, "NotFound"), unknown
        hidden = [
            await factory.community("unv", verification="unverified"),
            await factory.community("del", deleted=True),
            await factory.community("off", active=False),
        ]
        for did in hidden:
            status, body = await client.get(GET, {"community": did})
            assert (status, body["error"]) == (404, "NotFound"), did


async def test_handle_unknown_is_handle_invalid(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        c = await factory.community("nohandle", handle=None)
        status, body = await client.get(GET, {"community": c})
        assert status == 200
        assert body["handle"] == "handle.invalid"
        assert "displayHandle" not in body


async def test_get_viewer_state(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        me = await factory.user("me.test")
        c = await factory.community("c")
        _, body = await client.get(GET, {"community": c}, viewer=me)
        assert body["viewer"] == {"subscribed": False, "blocked": False}
        sub = await factory.subscribe(me, c)
        block = await factory.block(me, c)
        _, body = await client.get(GET, {"community": c}, viewer=me)
        assert body["viewer"] == {
            "subscribed": True,
            "blocked": True,
            "subscriptionUri": sub,
            "blockUri": block,
        }
        assert body["subscriberCount"] == 1


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("popular", ["b", "c", "a"]),
        ("new", ["c", "b", "a"]),
        ("alphabetical", ["a", "b", "c"]),
        ("active", ["a", "c", "b"]),
    ],
)
async def test_list_sorts(client: Client, factory: Factory, sort: str, expected: list[str]) -> None:
    with trio.fail_after(20):
        author = await factory.user("x.test")
        made = {
            "a": await factory.community("a", created_at=NOW - timedelta(days=3)),
            "b": await factory.community("B", created_at=NOW - timedelta(days=2)),
            "c": await factory.community("c", created_at=NOW - timedelta(days=1)),
        }
        for n, name in ((3, "b"), (1, "c")):
            for i in range(n):
                await factory.subscribe(f"did:plc:sub{i}", made[name])
        await factory.post(made["a"], author, created_at=NOW)
        # c has more posts, a the newest: "active" means recently active, not largest.
        await factory.post(made["c"], author, created_at=NOW - timedelta(hours=1))
        await factory.post(made["c"], author, created_at=NOW - timedelta(hours=2))
        status, body = await client.get(LIST, {"sort": sort})
        assert status == 200, body
        assert dids(body) == [made[n] for n in expected]
        assert "cursor" not in body


@pytest.mark.parametrize("sort", ["popular", "new", "alphabetical", "active"])
async def test_list_keyset_paging(client: Client, factory: Factory, sort: str) -> None:
    with trio.fail_after(30):
        author = await factory.user("x.test")
        made = []
        for i in range(23):
            c = await factory.community(f"c{i:02d}", created_at=NOW - timedelta(hours=i % 5))
            made.append(c)
            if i % 3:
                await factory.post(c, author, created_at=NOW - timedelta(minutes=i % 4))
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"sort": sort, "limit": "5", **({"cursor": cursor} if cursor else {})}
            status, body = await client.get(LIST, params)
            assert status == 200, body
            seen += dids(body)
            pages += 1
            cursor = body.get("cursor")
            if not cursor:
                break
        assert pages == 5
        assert len(seen) == len(set(seen)) == 23
        assert set(seen) == set(made)


async def test_list_visibility_and_subscriptions(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        me = await factory.user("me.test")
        public = await factory.community("pub")
        unlisted = await factory.community("unl", visibility="unlisted")
        private = await factory.community("prv", visibility="private")
        other_private = await factory.community("prv2", visibility="private")
        await factory.community("unv", verification="unverified")
        await factory.subscribe(me, private)
        await factory.subscribe(me, public)
        _, body = await client.get(LIST, {})
        assert dids(body) == [public]
        _, body = await client.get(LIST, {"visibility": "unlisted"})
        assert dids(body) == [unlisted]
        _, body = await client.get(LIST, {"visibility": "private"}, viewer=me)
        assert dids(body) == [private]
        assert other_private not in dids(body)
        _, body = await client.get(LIST, {"subscribed": "true", "sort": "alphabetical"}, viewer=me)
        assert dids(body) == [private, public]
        assert all(c["viewer"]["subscribed"] for c in body["communities"])
        for params in ({"subscribed": "true"}, {"visibility": "private"}):
            status, err = await client.get(LIST, params)
            assert (status, err["error"]) == (401, "AuthenticationRequired")


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "hot"},
        {"visibility": "secret"},
        {"limit": "0"},
        {"limit": "x"},
        {"subscribed": "maybe"},
    ],
)
async def test_list_bad_parameters(client: Client, params: dict[str, str]) -> None:
    with trio.fail_after(10):
        status, body = await client.get(LIST, params)
        assert (status, body["error"]) == (400, "InvalidRequest")


async def test_list_cursor_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        for i in range(3):
            await factory.community(f"c{i}")
        _, body = await client.get(LIST, {"limit": "1"})
        cursor = body["cursor"]
        for params in (
            {"cursor": "nonsense"},
            {"cursor": cursor + "x"},
            {"cursor": cursor, "sort": "new"},  # cursor of another sort
        ):
            status, err = await client.get(LIST, {"limit": "1", **params})
            assert (status, err["error"]) == (400, "InvalidCursor"), params


async def test_search_ranks_name_matches_first(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        exact = await factory.community("gaming", description="video games")
        contains = await factory.community("retrogaming", description="old consoles")
        described = await factory.community("consoles", description="gaming on consoles")
        await factory.community("cooking", description="recipes")
        await factory.community("gamingprivate", visibility="private")
        status, body = await client.get(SEARCH, {"q": "Gaming"})
        assert status == 200, body
        assert dids(body) == [exact, contains, described]
        assert body["total"] == 3
        _, body = await client.get(SEARCH, {"q": "gamng"})  # a typo still finds it
        assert exact in dids(body)
        _, body = await client.get(SEARCH, {"q": "!!!"})
        assert body == {"communities": [], "total": 0}


async def test_search_paging_and_errors(client: Client, factory: Factory) -> None:
    with trio.fail_after(30):
        made = [await factory.community(f"music{i}", description="music") for i in range(7)]
        seen: list[str] = []
        cursor = None
        while True:
            params = {"q": "music", "limit": "3", **({"cursor": cursor} if cursor else {})}
            status, body = await client.get(SEARCH, params)
            assert status == 200, body
            seen += dids(body)
            cursor = body.get("cursor")
            if not cursor:
                break
        assert sorted(seen) == sorted(made) and len(seen) == 7
        assert body["total"] == 7
        _, first = await client.get(SEARCH, {"q": "music", "limit": "3"})
        status, err = await client.get(SEARCH, {"q": "other", "cursor": first["cursor"]})
        assert (status, err["error"]) == (400, "InvalidCursor")
        for params in ({}, {"q": ""}, {"q": "x" * 300}, {"q": "a", "limit": "0"}):
            status, err = await client.get(SEARCH, params)
            assert (status, err["error"]) == (400, "InvalidRequest"), params


async def test_list_category_and_language_filters(client: Client, factory: Factory) -> None:
    with trio.fail_after(20):
        games = await factory.community("games", categories=("gaming", "fun"), language="en")
        jeux = await factory.community("jeux", categories=("gaming",), language="fr")
        await factory.community("food", categories=("cooking",), language="en")
        _, body = await client.get(LIST, {"category": "gaming", "sort": "alphabetical"})
        assert dids(body) == [games, jeux]
        _, body = await client.get(LIST, {"category": "gaming", "language": "FR"})
        assert dids(body) == [jeux]
        _, body = await client.get(LIST, {"category": "none"})
        assert dids(body) == []
        _, first = await client.get(LIST, {"category": "gaming", "limit": "1"})
        status, err = await client.get(LIST, {"limit": "1", "cursor": first["cursor"]})
        assert (status, err["error"]) == (400, "InvalidCursor")  # filters are part of the cursor
        status, err = await client.get(LIST, {"language": "not a language!"})
        assert status == 400


async def test_search_finds_a_word_anywhere_and_ranks_by_tier(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        long = "a community about many things, " * 8
        word_in_name = await factory.community("community12", display_name="Community 12 rust news")
        await factory.db.execute(
            "UPDATE communities SET search_trigrams = %s, description = %s WHERE did = %s",
            (trigrams(f"community12 Community 12 rust news {long}"), long, word_in_name),
        )
        word_in_description = await factory.community(
            "misc", description=f"{long} and the rust language"
        )
        exact = await factory.community("rust")
        prefix = await factory.community("rustaceans")
        containing = await factory.community("learnrust")
        similar = await factory.community("ruby", description="gems")
        status, body = await client.get(SEARCH, {"q": "rust"})
        assert status == 200, body
        found = dids(body)
        # exact name, name prefix, name containing, a word anywhere, similar spelling
        assert found[:3] == [exact, prefix, containing]
        assert set(found[3:5]) == {word_in_name, word_in_description}
        assert found[5:] == [similar]
        assert body["total"] == 6


async def test_listings_and_search_hide_blocked_communities_from_the_blocker(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        me = await factory.user("me.test")
        blocked = await factory.community("blocked")
        kept = await factory.community("blockedtoo")
        await factory.block(me, blocked)
        _, body = await client.get(LIST, {}, viewer=me)
        assert dids(body) == [kept]
        _, body = await client.get(SEARCH, {"q": "blocked"}, viewer=me)
        assert dids(body) == [kept]
        _, body = await client.get(SEARCH, {"q": "blocked"})
        assert set(dids(body)) == {blocked, kept}
        # Still readable directly, so it can be unblocked.
        status, body = await client.get(GET, {"community": blocked}, viewer=me)
        assert status == 200 and body["viewer"]["blocked"] is True


async def test_private_community_is_found_by_members_and_its_creator_only(
    client: Client, factory: Factory
) -> None:
    with trio.fail_after(20):
        member = await factory.user("m.test")
        creator = await factory.user("c.test")
        outsider = await factory.user("o.test")
        secret = await factory.community("secret", visibility="private", created_by=creator)
        await factory.subscribe(member, secret)
        for viewer, status in ((None, 404), (outsider, 404), (member, 200), (creator, 200)):
            got, _ = await client.get(GET, {"community": secret}, viewer=viewer)
            assert got == status, viewer
        for viewer, listed in ((outsider, []), (member, [secret]), (creator, [secret])):
            _, body = await client.get(LIST, {"visibility": "private"}, viewer=viewer)
            assert dids(body) == listed, viewer
