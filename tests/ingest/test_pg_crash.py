"""Issue 12.1: PostgreSQL crashes mid-stream and nothing is lost or doubled.

A real PostgreSQL server (its own cluster) is killed with SIGKILL, postmaster
and backends at once, while the consumer streams into it, and restarted about
a second later as the supervisor would. Batches commit asynchronously, so the
crash takes back the last ones, cursor included; the pool reconnects without
an error. The consumer must notice and resume from the durable cursor. The
result is compared, row by row and counter by counter, with a clean run of
the same events into another database.
"""

from __future__ import annotations

import random
from typing import Any

import trio

from bench.gen_stream import generate
from coves.db import Database
from coves.ingest.indexer import Indexer
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from nurseries.jetstream import ConsumerConfig, JetstreamConsumer
from tests.support.consumer import wait_for
from tests.support.crashable_postgres import crashable_postgres
from tests.support.events import frames
from tests.support.fake_jetstream import FakeJetstream
from tests.support.snapshot import differences, snapshot

INSTANCE_DID = "did:web:coves.bench"
EVENTS = 600
BATCH = 10


def _indexer(db: Database, lexicons: LexiconRegistry) -> Indexer:
    return Indexer(db, instance_did=INSTANCE_DID, metrics=Metrics(), validator=lexicons)


async def _clean_run(db: Database, lexicons: LexiconRegistry, events: list[dict[str, Any]]) -> None:
    indexer = _indexer(db, lexicons)
    await indexer.load_cursor()
    for start in range(0, len(events), BATCH):
        await indexer.apply(frames(*events[start : start + BATCH]))


def _recent(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events stamped a minute ago, inside the stream's replay window."""
    shift = FakeJetstream.now_us() - 60_000_000 - events[0]["time_us"]
    return [{**event, "time_us": event["time_us"] + shift} for event in events]


async def _publish_paced(fake: FakeJetstream, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), BATCH):
        for event in events[start : start + BATCH]:
            fake.publish(event)
        await trio.sleep(0.02)


async def test_postgres_killed_mid_stream_loses_and_doubles_nothing(
    db: Database, lexicons: LexiconRegistry
) -> None:
    events = _recent(list(generate(EVENTS, seed=12, communities=5)))
    first, second, third = events[:200], events[200:400], events[400:]
    with crashable_postgres() as server, trio.fail_after(120):
        crash_db = Database(server.conninfo, pool_size=2, connect_timeout_s=10)
        await crash_db.open()
        fake = FakeJetstream()
        consumer = JetstreamConsumer(
            _indexer(crash_db, lexicons),
            ConsumerConfig(
                url="ws://jetstream.test/subscribe",
                batch_size=BATCH,
                batch_ms=10,
                rewind_seconds=0.0,  # resume exactly at the durable cursor
                backoff_base=0.05,
                backoff_cap=0.2,
            ),
            opener=fake.opener(),
            rng=random.Random(12),
        )
        try:
            async with fake.running(), trio.open_nursery() as nursery:
                await nursery.start(consumer.run)
                await fake.wait_for_connections(1)

                # 1. Crash while idle, right after a stretch of committed batches.
                await _publish_paced(fake, first)
                await wait_for(lambda: consumer.cursor == first[-1]["time_us"])
                believed = consumer.cursor
                await trio.to_thread.run_sync(server.crash)
                await trio.sleep(1.0)
                await trio.to_thread.run_sync(server.start)
                durable = await trio.to_thread.run_sync(server.cursor)
                # The crash really took back batches the consumer saw commit.
                assert durable is not None and believed is not None and durable < believed

                # 2. Crash in the middle of the stream, writes still arriving.
                async with trio.open_nursery() as writers:
                    writers.start_soon(_publish_paced, fake, second)
                    await trio.sleep(0.1)
                    await trio.to_thread.run_sync(server.crash)
                    await trio.sleep(1.0)
                    await trio.to_thread.run_sync(server.start)

                await _publish_paced(fake, third)
                last = third[-1]["time_us"]
                await wait_for(lambda: consumer.cursor == last)
                nursery.cancel_scope.cancel()
        finally:
            await crash_db.close()

        assert await trio.to_thread.run_sync(server.cursor) == last
        crashed = await trio.to_thread.run_sync(snapshot, server.conninfo)

    await _clean_run(db, lexicons, events)
    clean = await trio.to_thread.run_sync(snapshot, db.conninfo)
    assert clean["posts"] and clean["votes"] and clean["comments"]
    assert differences(clean, crashed) == []
    # The crash was noticed (the pool reconnected silently; the session check did not).
    assert consumer.reconnects["database"] >= 1
