"""Coves reading the real reference PDS's firehose: records written straight to the PDS
by a client (not through Coves) reach the index, verified against the real PLC.

The consumer runs in the test process with the production opener, sink, indexer and
identity layer (signature checks on); the PDS and PLC are Bluesky's reference
servers (tests/support/pds.py). The same records then flow the same way when Coves
itself writes them (the journey, tests/e2e/test_journey.py).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from coves.config import test_settings
from coves.db import Database
from coves.identity.factory import build_fetcher, build_resolver
from coves.ingest.firehose_sink import FirehoseSink, PdsFetcher, ResolverKeys
from coves.ingest.indexer import Indexer
from coves.ingest.stream import source_name
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from nurseries.jetstream import ConsumerConfig, JetstreamConsumer
from tests.e2e.helpers import (
    COMMENT,
    INSTANCE_DID,
    POST,
    PROFILE,
    SUBSCRIPTION,
    VOTE,
    call,
    comment_record,
    community_profile,
    delete,
    eventually,
    post_record,
    put,
    ref,
    row,
    vote_record,
)
from tests.support.pds import TestPds


@asynccontextmanager
async def consuming(
    pds: TestPds, db: Database, *, verify: bool = True
) -> AsyncIterator[tuple[JetstreamConsumer, FirehoseSink]]:
    settings = test_settings(
        plc_url=pds.plc_url,
        firehose_urls=(f"ws://127.0.0.1:{pds.port}",),
        firehose_verify=verify,
        jetstream_batch_ms=20,
        skip_did_web_verification=True,
    )
    metrics = Metrics()
    fetcher = build_fetcher(settings)
    resolver = build_resolver(settings, db, fetcher, metrics=metrics)
    indexer = Indexer(
        db,
        instance_did=INSTANCE_DID,
        metrics=metrics,
        validator=LexiconRegistry.load(),
        skip_did_web_verification=True,
    )
    url = settings.firehose_urls[0]
    sink = FirehoseSink(
        indexer,
        db,
        source=source_name(url),
        metrics=metrics,
        verify=verify,
        keys=ResolverKeys(resolver),
        fetcher=PdsFetcher(resolver, fetcher),
    )
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig.from_settings(settings, firehose_url=url),
        metrics=metrics,
        rng=random.Random(4),
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            yield consumer, sink
            nursery.cancel_scope.cancel()
    finally:
        await fetcher.aclose()


async def test_records_written_straight_to_the_pds_reach_the_index(
    pds: TestPds, db: Database
) -> None:
    with trio.fail_after(120):
        community = await pds.create_account()
        alice = await pds.create_account()
        bob = await pds.create_account()
        async with consuming(pds, db) as (consumer, sink):
            await put(pds, community, PROFILE, "self", community_profile(community, alice.did))
            post = await put(
                pds, community, POST, "3kpost0000001", post_record(community.did, alice.did, "Hi")
            )
            root = ref(post["uri"], post["cid"])
            await put(
                pds,
                bob,
                SUBSCRIPTION,
                "3ksub00000001",
                {"subject": community.did, "createdAt": "2026-01-02T03:04:05.000Z"},
            )
            comment = await put(
                pds, bob, COMMENT, "3kcomm0000001", comment_record(root, root, "first")
            )
            reply = ref(comment["uri"], comment["cid"])
            await put(pds, alice, COMMENT, "3kcomm0000002", comment_record(root, reply, "nested"))
            await put(pds, bob, VOTE, "3kvote0000001", vote_record(root, "up"))
            await put(pds, alice, VOTE, "3kvote0000002", vote_record(root, "down"))
            await put(pds, alice, VOTE, "3kvote0000003", vote_record(reply, "up"))

            async def indexed() -> bool:
                got = await row(
                    db,
                    "SELECT upvote_count, downvote_count, comment_count FROM posts WHERE uri = %s",
                    post["uri"],
                )
                reply_row = await row(
                    db,
                    "SELECT reply_count, upvote_count FROM comments WHERE uri = %s",
                    comment["uri"],
                )
                return got == {
                    "upvote_count": 1,
                    "downvote_count": 1,
                    "comment_count": 2,
                } and reply_row == {"reply_count": 1, "upvote_count": 1}

            await eventually(indexed)
            assert await row(
                db,
                "SELECT subscriber_count FROM community_stats WHERE did = %s",
                community.did,
            ) == {"subscriber_count": 1}

            # edit, delete, unvote: the same records change through the stream
            await put(
                pds,
                community,
                POST,
                "3kpost0000001",
                post_record(community.did, alice.did, "Hi (edited)"),
            )
            await delete(pds, bob, VOTE, "3kvote0000001")
            await delete(pds, alice, COMMENT, "3kcomm0000002")

            async def changed() -> bool:
                got = await row(
                    db,
                    "SELECT title, upvote_count, comment_count FROM posts WHERE uri = %s",
                    post["uri"],
                )
                return got == {"title": "Hi (edited)", "upvote_count": 0, "comment_count": 1}

            await eventually(changed)

            # the account goes away and comes back: #account events
            await call(pds, bob, "com.atproto.server.deactivateAccount", {})

            async def inactive() -> bool:
                got = await row(db, "SELECT active FROM users WHERE did = %s", bob.did)
                return got == {"active": False}

            await eventually(inactive)
            await call(pds, bob, "com.atproto.server.activateAccount")

            async def active() -> bool:
                got = await row(db, "SELECT active FROM users WHERE did = %s", bob.did)
                return got == {"active": True}

            await eventually(active)

        assert consumer.events["dead_lettered"] == 0, await db.fetch("SELECT * FROM dead_letters")
        assert sink.stats.gaps == 0 and sink.stats.outdated_cursor == 0
        assert sink.stats.frames["commit"] > 0 and sink.stats.frames["identity"] > 0
        stored = await row(
            db,
            "SELECT time_us FROM ingest_cursor WHERE name = %s",
            source_name(f"ws://127.0.0.1:{pds.port}"),
        )
        assert stored is not None and stored["time_us"] == sink.stats.last_seq


async def test_a_restarted_consumer_resumes_from_its_seq_without_doubling(
    pds: TestPds, db: Database
) -> None:
    with trio.fail_after(120):
        community = await pds.create_account()
        alice = await pds.create_account()
        await put(pds, community, PROFILE, "self", community_profile(community, alice.did))
        post = await put(
            pds, community, POST, "3kpost0000001", post_record(community.did, alice.did, "P")
        )
        root = ref(post["uri"], post["cid"])
        async with consuming(pds, db) as (consumer, _):
            await put(pds, alice, VOTE, "3kvote0000001", vote_record(root, "up"))

            async def one_vote() -> bool:
                got = await row(db, "SELECT upvote_count FROM posts WHERE uri = %s", post["uri"])
                return got == {"upvote_count": 1}

            await eventually(one_vote)
            first_cursor = consumer.cursor
        # written while Coves is away
        await put(pds, alice, COMMENT, "3kcomm0000001", comment_record(root, root, "while away"))
        async with consuming(pds, db) as (consumer, sink):

            async def caught_up() -> bool:
                got = await row(
                    db, "SELECT upvote_count, comment_count FROM posts WHERE uri = %s", post["uri"]
                )
                return got == {"upvote_count": 1, "comment_count": 1}

            await eventually(caught_up)
        assert first_cursor is not None and consumer.cursor is not None
        assert consumer.cursor > first_cursor
        assert sink.stats.gaps == 0
