"""Bad input is a 400 with the right error, never a 500; unknown posts are 404."""

from __future__ import annotations

from typing import Any

import pytest

from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.read.comments.params import parse_thread_params
from coves.xrpc.app import create_app
from tests.comments import factories as f
from tests.comments.conftest import Client

POST = "at://did:plc:community1/social.coves.community.post/3kabc"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"post": ""},
        {"post": "not-a-uri"},
        {"post": "https://example.com/post/1"},
        {"post": "at://did:plc:community1"},
        {"post": "at://did:plc:community1/social.coves.community.post"},
        {"post": "at://did:plc:alice/social.coves.community.comment/3kabc"},  # not a post
        {"post": "at://did:plc:x/social.coves.community.post/3kabc?x=1"},
        {"post": POST, "depth": -1},
        {"post": POST, "depth": 101},
        {"post": POST, "depth": "two"},
        {"post": POST, "depth": "1.5"},
        {"post": POST, "depth": "99999999999999999999"},
        {"post": POST, "limit": 0},
        {"post": POST, "limit": "x"},
        {"post": POST, "repliesPerParent": -1},
        {"post": POST, "repliesPerParent": 51},
        {"post": POST, "sort": "best"},
        {"post": POST, "sort": "HOT"},
        {"post": POST, "parentRkey": "bad/key"},
        {"post": POST, "sort": "new", "timeframe": "forever"},
        {"post": POST, "sort": "top", "timeframe": "decade"},
    ],
)
async def test_invalid_params_are_400(db: Database, client: Client, params: dict[str, Any]) -> None:
    res = await client.get(params)
    assert res.status == 400, res.body
    assert res.body["error"] == "InvalidRequest"
    assert res.body["message"]


async def test_repeated_param_is_400(bare_client: Client) -> None:
    res = await bare_client.get([("post", POST), ("post", POST)])
    assert res.status == 400
    assert res.body["error"] == "InvalidRequest"


def test_limit_is_clamped_and_timeframe_ignored_without_top() -> None:
    # What the clients send: limits above the maximum, timeframe with the default sort.
    parsed = parse_thread_params({"post": POST, "limit": "500", "timeframe": "day"})
    assert (parsed.limit, parsed.sort, parsed.timeframe) == (100, "hot", None)
    assert parse_thread_params({"post": POST, "parentRkey": "3kabc"}).parent == "3kabc"


def test_lexicon_decoded_ints_are_accepted() -> None:
    parsed = parse_thread_params({"post": POST, "depth": 0, "limit": 100, "sort": "top"})
    assert (parsed.depth, parsed.limit, parsed.sort) == (0, 100, "top")
    with pytest.raises(Exception, match="depth"):
        parse_thread_params({"post": POST, "depth": True})


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "a.b", "e30.AAAAAAAAAAAAAAAAAAAAAA", "x" * 2000],
)
async def test_bad_cursor_is_invalid_cursor(db: Database, client: Client, cursor: str) -> None:
    post = await f.thread_fixture(db)
    for sort in ("new", "hot", "top"):
        res = await client.get({"post": post.uri, "sort": sort, "cursor": cursor})
        assert res.status == 400
        assert res.body["error"] == "InvalidCursor"


async def test_overlong_cursor_is_refused(bare_client: Client) -> None:
    res = await bare_client.get({"post": POST, "cursor": "x" * 3000})
    assert res.status == 400
    # The lexicon's maxLength catches it first when present; the codec otherwise.
    assert res.body["error"] in {"InvalidRequest", "InvalidCursor"}


async def test_tampered_cursor_is_invalid_cursor(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    for i in range(3):
        await f.comment(db, post, minutes=i)
    for sort in ("new", "hot"):
        page = await client.get({"post": post.uri, "sort": sort, "limit": 1})
        cursor = page.body["cursor"]
        body, _, mac = cursor.partition(".")
        flipped = ("A" if body[5] != "A" else "B").join((body[:5], body[6:]))
        for bad in (f"{flipped}.{mac}", f"{body}.{mac[:-2]}AA", body):
            res = await client.get({"post": post.uri, "sort": sort, "cursor": bad})
            assert res.status == 400
            assert res.body["error"] == "InvalidCursor"


async def test_expired_snapshot_cursor_is_invalid_cursor(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    for i in range(3):
        await f.comment(db, post, minutes=i)
    page = await client.get({"post": post.uri, "sort": "top", "limit": 1})
    await db.execute("DELETE FROM listing_snapshots")
    # A fresh app (a restart, another replica) has no in-process copy either.
    fresh = Client(create_app(AppContext(settings=test_settings(), db=db)))
    res = await fresh.get({"post": post.uri, "sort": "top", "cursor": page.body["cursor"]})
    assert res.status == 400
    assert res.body["error"] == "InvalidCursor"
    assert "expired" in res.body["message"]


async def test_unknown_post_is_404(db: Database, client: Client) -> None:
    await f.thread_fixture(db)
    res = await client.get({"post": POST})
    assert res.status == 404
    assert res.body == {"error": "NotFound", "message": "post not found"}


async def test_handle_authority_is_resolved(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)  # the community's handle is gaming.community.coves.test
    mine = await f.comment(db, post)
    rkey = post.uri.rsplit("/", 1)[1]
    by_handle = f"at://Gaming.Community.Coves.Test/social.coves.community.post/{rkey}"
    res = await client.get({"post": by_handle})
    assert res.status == 200
    assert res.body["post"]["uri"] == post.uri
    assert [n["comment"]["uri"] for n in res.body["comments"]] == [mine.uri]
    unknown = await client.get({"post": f"at://nobody.test/social.coves.community.post/{rkey}"})
    assert unknown.status == 404
    assert unknown.body["error"] == "NotFound"


async def test_deleted_post_is_404(db: Database, client: Client) -> None:
    await f.community(db)
    post = await f.post(db, deleted=True)
    await f.comment(db, post)
    res = await client.get({"post": post.uri})
    assert res.status == 404
    assert res.body["error"] == "NotFound"


async def test_post_by_deactivated_author_is_404(db: Database, client: Client) -> None:
    await f.community(db)
    await f.user(db, "did:plc:gone", "gone.test", active=False)
    post = await f.post(db, author="did:plc:gone")
    res = await client.get({"post": post.uri})
    assert res.status == 404


async def test_post_in_deleted_community_is_404(db: Database, client: Client) -> None:
    await f.community(db, "did:plc:deadcommunity", deleted=True)
    post = await f.post(db, community_did="did:plc:deadcommunity")
    res = await client.get({"post": post.uri})
    assert res.status == 404


async def test_wrong_http_method_is_400(bare_client: Client) -> None:
    res = await bare_client.post_raw()
    assert res.status == 400


async def test_invalid_credentials_are_401(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    res = await client.get({"post": post.uri}, viewer="not-a-did")
    assert res.status == 401
    assert res.body["error"] == "AuthenticationRequired"
