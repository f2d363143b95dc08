"""Posting when things around it fail: the community's PDS down, a slow linked
site, a community this instance does not host."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from coves.config import Settings
from coves.db import Database
from coves.lexicon.registry import LexiconRegistry
from tests.posting.world import World, posting_world
from tests.support.http_server import Reply
from tests.support.pds import TestPds

CREATE = "social.coves.community.post.create"
UNFURL_TIMEOUT = 2.0


@pytest.fixture
async def world(
    settings: Settings, db: Database, pds: TestPds, lexicons: LexiconRegistry
) -> AsyncIterator[World]:
    async with posting_world(
        settings, db, pds, lexicons, unfurl_timeout_seconds=UNFURL_TIMEOUT
    ) as w:
        yield w


async def test_community_pds_down_is_503_and_nothing_is_indexed(world: World) -> None:
    with trio.fail_after(120):
        alice = await world.user()
        community = await world.community(alice)
        token = await world.token(alice, CREATE)
        world.pds.stop_pds()
        try:
            started = trio.current_time()
            status, body = await world.client.post(
                CREATE, {"community": community.did, "title": "into the void"}, token=token
            )
            assert (status, body["error"]) == (503, "PdsUnavailable"), body
            assert trio.current_time() - started < 15.0  # prompt, not a hang
        finally:
            world.pds.start_pds()
        assert await world.db.fetchval("SELECT count(*) FROM posts") == 0
        # The failed write spent no limit: the same post goes through now.
        assert await world.db.fetchval("SELECT count(*) FROM post_submissions") == 0
        status, body = await world.call(
            CREATE, {"community": community.did, "title": "into the void"}, as_=alice
        )
        assert status == 200, body


async def test_slow_link_target_opens_the_breaker_and_posting_stays_fast(world: World) -> None:
    with trio.fail_after(120):
        alice = await world.user()
        community = await world.community(alice)
        world.srv.route(
            "slow.example.test", "/story", Reply(body=b"<title>late</title>", delay=60.0)
        )

        async def post_link(n: int) -> float:
            url = world.srv.url("slow.example.test", "/story") + f"?n={n}"
            token = await world.token(alice, CREATE)
            started = trio.current_time()
            status, body = await world.client.post(
                CREATE,
                {
                    "community": community.did,
                    "title": f"slow {n}",
                    "embed": {"$type": "social.coves.embed.external", "external": {"uri": url}},
                },
                token=token,
            )
            assert status == 200, body  # posted without a card, never refused
            return trio.current_time() - started

        for n in range(3):
            took = await post_link(n)
            assert UNFURL_TIMEOUT * 0.9 <= took < UNFURL_TIMEOUT + 8.0  # waited one deadline
        assert world.srv.hits("slow.example.test") == 3
        took = await post_link(3)
        assert took < UNFURL_TIMEOUT * 0.75  # the open breaker: no wait at all
        assert world.srv.hits("slow.example.test") == 3
        opened = world.ctx.metrics.registry.get_sample_value(
            "coves_link_card_breaker_opened_total", {"kind": "site"}
        )
        assert opened == 1.0
        rows = await world.db.fetch("SELECT embed FROM posts ORDER BY created_at")
        assert len(rows) == 4 and all("title" not in r["embed"]["external"] for r in rows)


async def test_a_community_hosted_elsewhere_cannot_be_posted_to(world: World) -> None:
    with trio.fail_after(60):
        alice = await world.user()
        community = await world.foreign_community(alice)  # indexed, but not ours to write
        status, body = await world.call(
            CREATE, {"community": community.did, "title": "x"}, as_=alice
        )
        assert (status, body["error"]) == (400, "CommunityNotHostedHere")
        assert await world.db.fetchval("SELECT count(*) FROM post_submissions") == 0
