"""getComments?parentRkey: the subtree under one comment (comment permalinks, "load more")."""

from __future__ import annotations

import trio

from coves.db import Database
from tests.comments import factories as f
from tests.comments.conftest import Client
from tests.comments.test_comment_threads import uris


def key(ref: f.Ref) -> str:
    return ref.uri.rsplit("/", 1)[1]


async def test_subtree_is_the_comment_with_its_replies(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    parent = await f.comment(db, post, minutes=1)
    replies = [await f.comment(db, post, parent, minutes=2 + i) for i in range(3)]
    deep = await f.comment(db, post, replies[0], minutes=10)
    await f.comment(db, post, minutes=20)  # another top-level comment: not in the subtree
    with trio.fail_after(10):
        res = await client.get({"post": post.uri, "parentRkey": key(parent), "sort": "new"})
        assert res.status == 200, res.body
        (node,) = res.body["comments"]
        assert node["comment"]["uri"] == parent.uri
        assert uris(node["replies"]) == [r.uri for r in reversed(replies)]
        oldest = node["replies"][-1]
        assert uris(oldest["replies"]) == [deep.uri]
        assert res.body["post"]["uri"] == post.uri
        # depth counts from the comment: 0 is the comment alone, 1 its direct replies.
        res = await client.get({"post": post.uri, "parentRkey": key(parent), "depth": 0})
        (node,) = res.body["comments"]
        assert "replies" not in node and node["hasMore"] is True
        res = await client.get(
            {"post": post.uri, "parentRkey": key(parent), "depth": 1, "sort": "new"}
        )
        (node,) = res.body["comments"]
        assert uris(node["replies"]) == [r.uri for r in reversed(replies)]
        assert all("replies" not in r for r in node["replies"])
        assert node["replies"][-1]["hasMore"] is True


async def test_limit_and_cursor_page_the_direct_replies(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    parent = await f.comment(db, post, minutes=1)
    replies = [await f.comment(db, post, parent, minutes=2 + i, ups=i) for i in range(5)]
    with trio.fail_after(20):
        for sort, expected in (
            ("new", [r.uri for r in reversed(replies)]),
            ("top", [r.uri for r in reversed(replies)]),
        ):
            seen: list[str] = []
            cursor = None
            while True:
                params = {"post": post.uri, "parentRkey": key(parent), "sort": sort, "limit": 2}
                res = await client.get({**params, **({"cursor": cursor} if cursor else {})})
                assert res.status == 200, res.body
                (node,) = res.body["comments"]
                assert node["comment"]["uri"] == parent.uri
                seen += uris(node.get("replies", []))
                cursor = res.body.get("cursor")
                if not cursor:
                    break
            assert seen == expected, sort
        # A cursor of the whole thread is not one of the subtree's.
        whole = await client.get({"post": post.uri, "sort": "new", "limit": 1})
        res = await client.get(
            {
                "post": post.uri,
                "parentRkey": key(parent),
                "sort": "new",
                "cursor": whole.body.get("cursor", "x"),
            }
        )
        assert (res.status, res.body["error"]) == (400, "InvalidCursor")


async def test_deleted_parent_is_a_placeholder_and_unknown_is_404(
    db: Database, client: Client
) -> None:
    post = await f.thread_fixture(db)
    gone = await f.comment(db, post, minutes=1, deleted=True)
    reply = await f.comment(db, post, gone, minutes=2)
    other_post = await f.post(db)
    elsewhere = await f.comment(db, other_post, minutes=3)
    with trio.fail_after(10):
        res = await client.get({"post": post.uri, "parentRkey": key(gone)})
        assert res.status == 200, res.body
        (node,) = res.body["comments"]
        assert node["comment"]["isDeleted"] is True and "author" not in node["comment"]
        assert uris(node["replies"]) == [reply.uri]
        for missing in ("3kzzzzzzzzzzz", key(elsewhere)):  # not a comment under this post
            res = await client.get({"post": post.uri, "parentRkey": missing})
            assert (res.status, res.body["error"]) == (404, "ParentNotFound"), missing
