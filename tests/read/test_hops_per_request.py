"""Thread hops per signed-in read, counted: each ``Database.run`` is one trip to a
worker thread and one pool checkout, which under load cost more of the server's
CPU than the statements themselves (docs/performance.md). The bounds are what the
read path needs today; a change that adds a hop to every request fails here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from psycopg_pool import ConnectionPool

from coves.db import Database
from tests.read.conftest import Client
from tests.support.factories import Factory

TIMELINE = "social.coves.feed.getTimeline"
COMMUNITY_FEED = "social.coves.communityFeed.getCommunity"
POST_GET = "social.coves.community.post.get"
COMMENTS = "social.coves.community.comment.getComments"


class Counted:
    """A connection that counts the statements run on it."""

    def __init__(self, conn: Any, tally: list[int]) -> None:
        self._conn = conn
        self._tally = tally

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._tally[0] += 1
        return self._conn.execute(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class Tally:
    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hops = 0
        self.statements = [0]
        self.checks = 0
        real = db.run
        real_check = ConnectionPool.check_connection

        def check(conn: Any) -> None:  # the pool's checkout check: one more round trip
            self.checks += 1
            real_check(conn)

        monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(check))

        async def run(fn: Callable[[Any], Any], *, transaction: bool = True) -> Any:
            self.hops += 1
            return await real(
                lambda conn: fn(Counted(conn, self.statements)), transaction=transaction
            )

        monkeypatch.setattr(db, "run", run)

    def take(self) -> tuple[int, int, int]:
        got = (self.hops, self.statements[0], self.checks)
        self.hops, self.statements[0], self.checks = 0, 0, 0
        return got


async def test_signed_in_reads_take_few_thread_hops(
    client: Client, factory: Factory, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(30):
        author = await factory.user("a.test")
        viewer = await factory.user("v.test")
        community = await factory.community("gaming")
        await factory.subscribe(viewer, community)
        posts = [await factory.post(community, author, title=f"p{i}") for i in range(5)]
        await factory.vote(viewer, posts[0], 1)
        for i in range(3):
            await factory.comment(posts[0], author, content=f"c{i}")
        tally = Tally(db, monkeypatch)
        measured: dict[str, tuple[int, int, int]] = {}
        for name, nsid, params in (
            ("timeline", TIMELINE, {}),
            ("community feed", COMMUNITY_FEED, {"community": community, "sort": "new"}),
            ("post.get", POST_GET, {"uris": posts[:3]}),
            ("getComments", COMMENTS, {"post": posts[0]}),
        ):
            for when in ("first", "again"):
                status, body = await client.get(nsid, params, viewer=viewer)
                assert status == 200, body
                measured[f"{name} ({when})"] = tally.take()
        print("hops, statements, pool checks per request:", measured)
        # Hydrating the page and the viewer's relations to it go in one hop (two
        # statements); the rest is the skeleton (and a new snapshot's insert). The
        # timeline hydrates the posts first, so the feed after it finds them cached.
        assert {name: hops for name, (hops, _, _) in measured.items()} == {
            "timeline (first)": 2,  # subscriptions + ranking + snapshot insert, page
            "timeline (again)": 1,  # the snapshot reused, the posts cached: relations
            "community feed (first)": 3,  # community, keyset page, relations
            "community feed (again)": 2,
            "post.get (first)": 1,
            "post.get (again)": 1,  # a permalink is always read fresh
            "getComments (first)": 3,  # ranking + snapshot insert, comments, relations
            "getComments (again)": 1,
        }, measured
        # Connections in steady use skip the pool's checkout check (a round trip).
        assert sum(checks for _, _, checks in measured.values()) <= 4, measured
