"""End to end: fake Jetstream → consumer → the real Indexer → PostgreSQL."""

from __future__ import annotations

import random

import trio

from coves.config import test_settings
from coves.context import build_context
from coves.db import Database
from coves.ingest.build import production_indexer
from coves.ingest.indexer import Indexer
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from nurseries.jetstream import ConsumerConfig, JetstreamConsumer
from nurseries.main import capability_children
from tests.support.consumer import wait_for
from tests.support.events import (
    COMMENT,
    POST,
    PROFILE,
    VOTE,
    Stream,
    comment_record,
    community_record,
    did,
    post_record,
    uri,
    vote_record,
)
from tests.support.fake_jetstream import FakeJetstream

INSTANCE_DID = "did:web:coves.test"
COMMUNITY = did("community")
ALICE, BOB, CAROL = did("alice"), did("bob"), did("carol")
US = 1_000_000


async def test_events_flow_into_postgres_across_an_abnormal_close(db: Database) -> None:
    fake, stream = FakeJetstream(), Stream()
    indexer = Indexer(
        db, instance_did=INSTANCE_DID, metrics=Metrics(), validator=LexiconRegistry.load()
    )
    post = uri(COMMUNITY, POST, "3kpost0000001")
    consumer = JetstreamConsumer(
        indexer,
        ConsumerConfig(url="ws://jetstream.test/subscribe", batch_size=3, batch_ms=20),
        opener=fake.opener(),
        rng=random.Random(5),
    )
    with trio.fail_after(30):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            fake.publish(
                stream.commit(
                    COMMUNITY, PROFILE, "self", community_record("gaming", INSTANCE_DID, ALICE)
                )
            )
            fake.publish(
                stream.commit(COMMUNITY, POST, "3kpost0000001", post_record(COMMUNITY, ALICE))
            )
            fake.publish(stream.commit(BOB, VOTE, "3kvote0000001", vote_record(post, "up")))
            last = fake.publish(
                stream.commit(BOB, COMMENT, "3kcomm0000001", comment_record(post, post))
            )
            await wait_for(lambda: consumer.cursor == last["time_us"])
            assert await indexer.load_cursor() == last["time_us"]

            await fake.drop(abnormal=True)
            # published while disconnected: must arrive through the cursor
            fake.publish(stream.commit(CAROL, VOTE, "3kvote0000002", vote_record(post, "up")))
            fake.publish(stream.commit(ALICE, "app.bsky.feed.like", "x", {"subject": post}))
            await fake.wait_for_connections(2)
            last = fake.publish(
                stream.commit(ALICE, VOTE, "3kvote0000003", vote_record(post, "down"))
            )
            await wait_for(lambda: consumer.cursor == last["time_us"])
            nursery.cancel_scope.cancel()

    assert fake.requests[1].cursor is not None
    row = await db.fetchrow(
        "SELECT upvote_count, downvote_count, score, comment_count FROM posts WHERE uri = %s",
        (post,),
    )
    assert row == {"upvote_count": 2, "downvote_count": 1, "score": 1, "comment_count": 1}
    assert consumer.events["dead_lettered"] == 0
    assert consumer.reconnects == {"abnormal": 1}
    # the replayed overlap (rewind) was skipped, not double-counted
    assert consumer.events["skipped"] >= 1


async def test_production_factory_builds_the_indexer_with_identity_hooks(db: Database) -> None:
    ctx = build_context(test_settings(jetstream_enabled=True), db, metrics=Metrics())
    sink = production_indexer(ctx)
    assert isinstance(sink, Indexer)
    assert ctx.identity is not None and ctx.didweb is not None
    assert ctx.identity.on_identity_change in sink.on_identity_change
    assert sink.on_community_needs_verification == ctx.didweb.on_community_needs_verification
    names = [spec.name for spec in capability_children(ctx)]
    assert names[-1] == "jetstream"  # last: its hooks feed the other children
