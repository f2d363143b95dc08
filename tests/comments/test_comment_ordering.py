"""Sort orders and top-level paging."""

from __future__ import annotations

from datetime import timedelta

import trio

from coves.clock import utcnow
from coves.context import AppContext
from coves.db import Database
from tests.comments import factories as f
from tests.comments.conftest import Client
from tests.comments.test_comment_threads import uris


async def test_new_orders_newest_first(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    refs = [await f.comment(db, post, minutes=i, ups=10 - i) for i in range(4)]
    res = await client.get({"post": post.uri, "sort": "new"})
    assert uris(res.body["comments"]) == [r.uri for r in reversed(refs)]


async def test_top_orders_by_score_then_newest(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    low = await f.comment(db, post, ups=1, minutes=0)
    high = await f.comment(db, post, ups=9, downs=1, minutes=1)
    tie_old = await f.comment(db, post, ups=3, minutes=2)
    tie_new = await f.comment(db, post, ups=3, minutes=3)
    negative = await f.comment(db, post, downs=2, minutes=4)
    res = await client.get({"post": post.uri, "sort": "top"})
    assert uris(res.body["comments"]) == [
        high.uri,
        tie_new.uri,
        tie_old.uri,
        low.uri,
        negative.uri,
    ]


async def test_hot_balances_score_and_age(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    # coves_hot_rank: log10(score) + seconds/45000, so 10x the score is worth 12.5 hours.
    old_popular = await f.comment(db, post, ups=100, minutes=0)
    newer_modest = await f.comment(db, post, ups=10, minutes=60)
    much_newer = await f.comment(db, post, ups=1, minutes=60 * 30)
    res = await client.get({"post": post.uri})  # hot is the default
    assert uris(res.body["comments"]) == [much_newer.uri, old_popular.uri, newer_modest.uri]


async def test_replies_follow_the_requested_sort(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    top = await f.comment(db, post)
    early_best = await f.comment(db, post, top, ups=5, minutes=1)
    late_worst = await f.comment(db, post, top, ups=0, minutes=2)
    res_new = await client.get({"post": post.uri, "sort": "new"})
    assert uris(res_new.body["comments"][0]["replies"]) == [late_worst.uri, early_best.uri]
    res_top = await client.get({"post": post.uri, "sort": "top"})
    assert uris(res_top.body["comments"][0]["replies"]) == [early_best.uri, late_worst.uri]


async def test_top_timeframe_filters_top_level_only(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    now = utcnow()
    recent = await f.comment(db, post, ups=1, at=now - timedelta(minutes=30))
    yesterday = await f.comment(db, post, ups=50, at=now - timedelta(hours=20))
    last_week = await f.comment(db, post, ups=90, at=now - timedelta(days=5))
    # An old reply under a recent comment is still shown: timeframe scopes the top level.
    old_reply = await f.comment(db, post, recent, at=now - timedelta(days=3))

    hour = await client.get({"post": post.uri, "sort": "top", "timeframe": "hour"})
    assert uris(hour.body["comments"]) == [recent.uri]
    assert uris(hour.body["comments"][0]["replies"]) == [old_reply.uri]
    day = await client.get({"post": post.uri, "sort": "top", "timeframe": "day"})
    assert uris(day.body["comments"]) == [yesterday.uri, recent.uri]
    week = await client.get({"post": post.uri, "sort": "top", "timeframe": "week"})
    assert uris(week.body["comments"]) == [last_week.uri, yesterday.uri, recent.uri]
    every = await client.get({"post": post.uri, "sort": "top", "timeframe": "all"})
    assert uris(every.body["comments"]) == uris(week.body["comments"])
    unbounded = await client.get({"post": post.uri, "sort": "top"})
    assert uris(unbounded.body["comments"]) == uris(week.body["comments"])


async def test_new_paging_has_no_gaps_or_dupes(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    refs = [await f.comment(db, post, minutes=i) for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        res = await client.get({"post": post.uri, "sort": "new", "limit": 3, "cursor": cursor})
        assert res.status == 200
        seen.extend(uris(res.body["comments"]))
        pages += 1
        # A comment arriving mid-paging lands at the head, never shifting later pages.
        if pages == 1:
            await f.comment(db, post, minutes=100)
        cursor = res.body.get("cursor")
        if cursor is None:
            break
    assert seen == [r.uri for r in reversed(refs)]
    assert pages == 3


async def test_ranked_paging_is_stable_while_votes_change(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    refs = [await f.comment(db, post, ups=20 - i, minutes=i) for i in range(10)]
    expected = [r.uri for r in refs]  # top: highest score first

    first = await client.get({"post": post.uri, "sort": "top", "limit": 4})
    assert uris(first.body["comments"]) == expected[:4]
    # Votes reshuffle the live ranking: the last item jumps to the top, the first sinks.
    await f.set_votes(db, refs[9], 100)
    await f.set_votes(db, refs[0], 0)
    await f.comment(db, post, ups=1000)  # and a newcomer outranks everything

    second = await client.get(
        {"post": post.uri, "sort": "top", "limit": 4, "cursor": first.body["cursor"]}
    )
    third = await client.get(
        {"post": post.uri, "sort": "top", "limit": 4, "cursor": second.body["cursor"]}
    )
    assert "cursor" not in third.body
    seen = uris(first.body["comments"]) + uris(second.body["comments"])
    seen += uris(third.body["comments"])
    assert seen == expected
    # Contents are live even though the order is frozen.
    last = third.body["comments"][-1]["comment"]
    assert last["uri"] == refs[9].uri and last["stats"]["score"] == 100


async def test_cursor_is_bound_to_its_thread_and_sort(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    other = await f.post(db)
    for i in range(3):
        await f.comment(db, post, minutes=i)
        await f.comment(db, other, minutes=i)
    new_page = await client.get({"post": post.uri, "sort": "new", "limit": 1})
    hot_page = await client.get({"post": post.uri, "sort": "hot", "limit": 1})

    for params in (
        {"post": other.uri, "sort": "new", "cursor": new_page.body["cursor"]},
        {"post": post.uri, "sort": "hot", "cursor": new_page.body["cursor"]},
        {"post": post.uri, "sort": "new", "cursor": hot_page.body["cursor"]},
        {"post": post.uri, "sort": "top", "cursor": hot_page.body["cursor"]},
        {"post": other.uri, "sort": "hot", "cursor": hot_page.body["cursor"]},
    ):
        res = await client.get({**params, "limit": 1})
        assert res.status == 400, params
        assert res.body["error"] == "InvalidCursor"


async def test_timeframe_is_part_of_the_ranked_cursor(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    now = utcnow()
    for i in range(3):
        await f.comment(db, post, ups=i, at=now - timedelta(minutes=10 + i))
    day = await client.get({"post": post.uri, "sort": "top", "timeframe": "day", "limit": 1})
    res = await client.get(
        {"post": post.uri, "sort": "top", "timeframe": "week", "cursor": day.body["cursor"]}
    )
    assert res.status == 400
    assert res.body["error"] == "InvalidCursor"
    same = await client.get(
        {"post": post.uri, "sort": "top", "timeframe": "day", "cursor": day.body["cursor"]}
    )
    assert same.status == 200 and len(same.body["comments"]) == 2


async def test_comment_deleted_after_the_snapshot_drops_out(db: Database, client: Client) -> None:
    post = await f.thread_fixture(db)
    refs = [await f.comment(db, post, ups=10 - i, minutes=i) for i in range(4)]
    first = await client.get({"post": post.uri, "sort": "top", "limit": 2})
    await db.execute("UPDATE comments SET deleted_at = now() WHERE uri = %s", (refs[2].uri,))
    second = await client.get(
        {"post": post.uri, "sort": "top", "limit": 2, "cursor": first.body["cursor"]}
    )
    assert uris(second.body["comments"]) == [refs[3].uri]
    assert "cursor" not in second.body


async def test_concurrent_readers_share_one_build(
    db: Database, client: Client, comment_ctx: AppContext
) -> None:
    post = await f.thread_fixture(db)
    top = await f.comment(db, post)
    await f.comment(db, post, top, minutes=1)
    statuses: list[int] = []
    bodies: list[object] = []

    async def reader() -> None:
        res = await client.get({"post": post.uri})
        statuses.append(res.status)
        bodies.append(res.body)

    async with trio.open_nursery() as nursery:
        for _ in range(15):  # under the default comments rate limit (20/min)
            nursery.start_soon(reader)
    assert statuses == [200] * 15
    assert all(body == bodies[0] for body in bodies)
    cache = comment_ctx.read.comment_threads
    assert cache is not None and cache.misses == 1 and cache.hits == 14
