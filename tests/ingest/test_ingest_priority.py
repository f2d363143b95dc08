"""Ingestion keeps its own way to the database when reads saturate the pool.

In the single-process mode the indexer shares the event loop with the API;
what it must not share is the read pool's limiter, where hundreds of
requests can queue. With every read connection busy and more queued, a batch
through the ingest pool still commits at once; through the read pool it
would wait behind them all.
"""

from __future__ import annotations

import trio

from coves.config import test_settings
from coves.context import build_context
from coves.db import Database
from coves.ingest.build import production_indexer
from coves.metrics import Metrics
from nurseries.main import capability_children
from tests.ingest.helpers import value
from tests.support import events as ev
from tests.support.events import Stream, frames
from tests.support.pool import saturated

VOTER = ev.did("priority-voter")
SUBJECT = "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/social.coves.community.post/3kpriority001"


async def test_a_batch_commits_through_its_own_pool_while_reads_saturate_theirs(
    db: Database,
) -> None:
    ingest_db = Database(db.conninfo, pool_size=2, application_name="coves-ingest")
    await ingest_db.open()
    try:
        ctx = build_context(test_settings(jetstream_enabled=True), db, metrics=Metrics())
        own = production_indexer(ctx, db=ingest_db)
        shared = production_indexer(ctx)
        stream = Stream()
        vote = stream.commit(VOTER, ev.VOTE, "3kpriorvote01", ev.vote_record(SUBJECT))
        with trio.fail_after(60):
            async with saturated(db):
                with trio.move_on_after(1.0) as waited:
                    await shared.apply(frames(vote))
                assert waited.cancelled_caught  # behind the queued reads
                with trio.fail_after(10):
                    result = await own.apply(frames(vote))
                assert result.applied == 1
            count = await value(db, "SELECT count(*) FROM votes WHERE voter_did = %s", VOTER)
            assert count == 1
    finally:
        await ingest_db.close()


async def test_the_consumer_child_indexes_through_the_ingest_pool(db: Database) -> None:
    ingest_db = Database(db.conninfo, pool_size=1)
    ctx = build_context(test_settings(jetstream_enabled=True), db, metrics=Metrics())
    specs = {spec.name: spec for spec in capability_children(ctx, ingest_db=ingest_db)}
    assert "jetstream" in specs
    consumer = specs["jetstream"].start.__self__  # type: ignore[attr-defined]
    assert consumer.sink._db is ingest_db
