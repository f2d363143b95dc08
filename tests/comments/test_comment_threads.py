"""Thread shape: nesting, depth, breadth and hasMore."""

from __future__ import annotations

from typing import Any

import pytest

from coves.context import AppContext
from coves.db import Database
from coves.db.queries import comments as comment_sql
from coves.read.comments import thread as assemble
from coves.ttlcache import TTLCache
from tests.comments import factories as f
from tests.comments.conftest import Client
from tests.support.hops import RunCounter


def uris(nodes: list[dict[str, Any]]) -> list[str]:
    return [node["comment"]["uri"] for node in nodes]


def depth_of(nodes: list[dict[str, Any]]) -> int:
    """Number of nested reply levels under the top level."""
    deepest = 0
    for node in nodes:
        if node.get("replies"):
            deepest = max(deepest, 1 + depth_of(node["replies"]))
    return deepest


async def chain(db: Database, post: f.Ref, length: int) -> list[f.Ref]:
    """A top-level comment with a single reply chain ``length`` levels deep under it."""
    refs = [await f.comment(db, post, minutes=0)]
    for i in range(length):
        refs.append(await f.comment(db, post, refs[-1], minutes=i + 1))
    return refs


async def test_nested_replies_are_threaded(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    a = await f.comment(db, post, content="top a", minutes=1)
    a1 = await f.comment(db, post, a, content="reply a1", author="did:plc:bob", minutes=2)
    a1x = await f.comment(db, post, a1, content="reply a1x", minutes=3)
    b = await f.comment(db, post, content="top b", minutes=4)

    res = await client.get({"post": post.uri, "sort": "new"})

    assert res.status == 200
    assert uris(res.body["comments"]) == [b.uri, a.uri]
    node_a = res.body["comments"][1]
    assert uris(node_a["replies"]) == [a1.uri]
    assert uris(node_a["replies"][0]["replies"]) == [a1x.uri]
    assert "replies" not in res.body["comments"][0]
    assert "hasMore" not in node_a
    reply = node_a["replies"][0]["comment"]
    assert reply["parent"] == {"uri": a.uri, "cid": a.cid}
    assert reply["post"] == {"uri": post.uri, "cid": post.cid}
    assert reply["author"] == {"did": "did:plc:bob", "handle": "handle.invalid"}
    assert reply["content"] == "reply a1"
    assert reply["record"]["$type"] == "social.coves.community.comment"
    assert reply["record"]["reply"]["parent"]["uri"] == a.uri
    assert reply["stats"] == {"upvotes": 0, "downvotes": 0, "score": 0, "replyCount": 1}
    assert reply["createdAt"] == "2026-01-01T12:02:00.000Z"
    top = node_a["comment"]
    assert "parent" not in top  # parent == root is omitted
    assert "viewer" not in top  # anonymous
    assert res.body["post"]["uri"] == post.uri
    assert res.body["post"]["stats"]["commentCount"] == 0
    assert "cursor" not in res.body


async def test_depth_zero_is_flat_with_has_more(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    a, _ = (await chain(db, post, 1))[:2]
    b = await f.comment(db, post, minutes=10)

    res = await client.get({"post": post.uri, "depth": 0, "sort": "new"})

    assert res.status == 200
    assert uris(res.body["comments"]) == [b.uri, a.uri]
    assert depth_of(res.body["comments"]) == 0
    by_uri = {n["comment"]["uri"]: n for n in res.body["comments"]}
    assert by_uri[a.uri].get("hasMore") is True
    assert "hasMore" not in by_uri[b.uri]


async def test_depth_n_gives_exactly_n_levels_and_has_more_at_boundary(
    db: Database, client: Client
) -> None:
    post = await f.thread_fixture(db)
    refs = await chain(db, post, 6)

    for depth in (1, 3, 5):
        res = await client.get({"post": post.uri, "depth": depth})
        assert res.status == 200
        nodes = res.body["comments"]
        assert depth_of(nodes) == depth
        node = nodes[0]
        for level in range(depth):
            assert "hasMore" not in node
            assert node["comment"]["uri"] == refs[level].uri
            node = node["replies"][0]
        assert node["comment"]["uri"] == refs[depth].uri
        assert node["hasMore"] is True
        assert "replies" not in node

    full = await client.get({"post": post.uri, "depth": 6})
    assert depth_of(full.body["comments"]) == 6
    leaf = full.body["comments"][0]
    for _ in range(6):
        leaf = leaf["replies"][0]
    assert "hasMore" not in leaf


async def test_breadth_limit_sets_has_more(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    top = await f.comment(db, post)
    replies = [await f.comment(db, post, top, minutes=i + 1) for i in range(7)]

    res = await client.get({"post": post.uri, "sort": "new", "repliesPerParent": 3})
    node = res.body["comments"][0]
    assert uris(node["replies"]) == [r.uri for r in reversed(replies)][:3]
    assert node["hasMore"] is True

    default = await client.get({"post": post.uri, "sort": "new"})
    assert len(default.body["comments"][0]["replies"]) == 5  # default repliesPerParent

    exact = await client.get({"post": post.uri, "sort": "new", "repliesPerParent": 7})
    assert len(exact.body["comments"][0]["replies"]) == 7
    assert "hasMore" not in exact.body["comments"][0]

    none = await client.get({"post": post.uri, "repliesPerParent": 0})
    assert "replies" not in none.body["comments"][0]
    assert none.body["comments"][0]["hasMore"] is True


async def test_breadth_limit_applies_per_parent_on_each_level(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    tops = [await f.comment(db, post, minutes=i) for i in range(3)]
    for t in tops:
        mids = [await f.comment(db, post, t, minutes=10 + i) for i in range(3)]
        for m in mids:
            for i in range(3):
                await f.comment(db, post, m, minutes=20 + i)

    res = await client.get({"post": post.uri, "repliesPerParent": 2, "depth": 5})
    assert len(res.body["comments"]) == 3
    for node in res.body["comments"]:
        assert len(node["replies"]) == 2 and node["hasMore"] is True
        for mid in node["replies"]:
            assert len(mid["replies"]) == 2 and mid["hasMore"] is True
            for leaf in mid["replies"]:
                assert "replies" not in leaf and "hasMore" not in leaf


async def test_empty_thread(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    res = await client.get({"post": post.uri})
    assert res.status == 200
    assert res.body["comments"] == []
    assert res.body["post"]["uri"] == post.uri
    assert "cursor" not in res.body


async def test_comments_of_other_posts_do_not_leak(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    other = await f.post(db, title="other")
    mine = await f.comment(db, post)
    await f.comment(db, other)
    res = await client.get({"post": post.uri})
    assert uris(res.body["comments"]) == [mine.uri]


async def test_round_trips_do_not_grow_with_thread_size(
    db: Database, client: Client, comment_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = await f.thread_fixture(db)
    refs = await chain(db, post, 12)
    for parent in refs[:6]:
        for i in range(4):
            await f.comment(db, post, parent, minutes=50 + i)
    hops = RunCounter(db, monkeypatch)
    for params, viewer, expected in (
        ({"sort": "new"}, None, 2),  # post; top level + every level in one checkout
        ({"sort": "hot"}, None, 3),  # post; snapshot compute and store in one; tree
        ({"sort": "new", "depth": 100}, "did:plc:viewer", 3),  # + votes (post and comments)
    ):
        comment_ctx.read.posts.invalidate()  # count the post's query every time
        hops.calls = 0
        res = await client.get({"post": post.uri, **params}, viewer=viewer)
        assert res.status == 200
        assert hops.calls == expected, params
    assert depth_of(res.body["comments"]) == 12


async def test_response_budget_cuts_subtrees_with_has_more(
    db: Database, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(assemble, "MAX_REPLIES_PER_RESPONSE", 6)
    post = await f.thread_fixture(db)
    tops = [await f.comment(db, post, minutes=10 - i) for i in range(3)]  # newest first
    for t in tops:
        for i in range(3):
            mid = await f.comment(db, post, t, minutes=20 + i)
            await f.comment(db, post, mid, minutes=30 + i)

    res = await client.get({"post": post.uri, "sort": "new", "repliesPerParent": 3})

    nodes = res.body["comments"]
    assert uris(nodes) == [t.uri for t in tops]
    # The budget (6 replies) covers the first two subtrees' first level only.
    for node in nodes[:2]:
        assert len(node["replies"]) == 3 and "hasMore" not in node
        for mid in node["replies"]:
            assert "replies" not in mid and mid["hasMore"] is True
    assert "replies" not in nodes[2] and nodes[2]["hasMore"] is True


async def test_recursive_and_level_by_level_reads_agree(
    db: Database, client: Client, comment_ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-statement tree read and its level-by-level fallback build the same threads."""
    post = await f.thread_fixture(db)
    tops = [await f.comment(db, post, ups=i % 3, minutes=i) for i in range(4)]
    layer = tops
    for level in range(4):
        nxt = []
        for i, parent in enumerate(layer[:3]):
            for j in range(3 - level % 2):
                deleted = (i + j + level) % 5 == 0
                nxt.append(
                    await f.comment(
                        db, post, parent, ups=j, minutes=10 * level + j, deleted=deleted
                    )
                )
        layer = nxt
    queries = [
        {"sort": sort, "depth": depth, "repliesPerParent": rpp}
        for sort in ("hot", "top", "new")
        for depth, rpp in ((1, 2), (3, 2), (10, 5))
    ]
    comment_ctx.read.comment_threads = TTLCache(0)  # build every time

    recursive = [(await client.get({"post": post.uri, **q})).body for q in queries]
    forced = "SELECT n FROM generate_series(1, %(cap)s) AS n"
    monkeypatch.setattr(comment_sql, "TREE_SQL", dict.fromkeys(("hot", "top", "new"), forced))
    by_level = [(await client.get({"post": post.uri, **q})).body for q in queries]

    for query, one, other in zip(queries, recursive, by_level, strict=True):
        one.pop("cursor", None)
        other.pop("cursor", None)
        assert one == other, query
    assert depth_of(recursive[-1]["comments"]) >= 3
