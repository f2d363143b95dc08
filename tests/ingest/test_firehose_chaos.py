"""The Jetstream chaos schedules, on the firehose source: nothing lost, nothing doubled.

Same Hypothesis schedules (drops, silences, unanswered pings, 503s, database
outages) under MockClock, over the fake firehose's real binary frames; the
consumer resumes from the seq cursor and the sink sees every frame once, in
order. Also the seq gaps and outdated cursors such schedules must never cause.
"""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurseries.jetstream import FIREHOSE, ConsumerConfig, JetstreamConsumer
from tests.ingest.test_consumer_chaos import operations
from tests.support.consumer import CHAOS_CONFIG, play_schedule
from tests.support.events import VOTE, did
from tests.support.fake_firehose import FakeFirehose
from tests.support.fake_repo import Write
from tests.support.memory_sink import FirehoseMemorySink

VOTER = did("voter")


def _publish(fake: FakeFirehose, n: int, prefix: str) -> list[tuple[Any, ...]]:
    keys = []
    for i in range(n):
        _, commit = fake.write(VOTER, Write("create", VOTE, f"{prefix}{i}", {"direction": "up"}))
        keys.append((VOTER, "commit", commit.rev))
    return keys


async def _play(schedule: list[tuple[str, int]], seed: int) -> None:
    fake, sink = FakeFirehose(), FirehoseMemorySink()
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(
            url="ws://pds.test",
            kind=FIREHOSE,
            name="firehose:pds.test",
            rewind_seconds=0.0,
            **CHAOS_CONFIG,
        ),
        opener=fake.opener(),
        rng=random.Random(seed),
    )
    with trio.fail_after(50_000):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            published = await play_schedule(
                fake, sink, schedule, lambda n, prefix: _publish(fake, n, prefix)
            )
            nursery.cancel_scope.cancel()
    assert sink.applied_keys() == published
    # every reconnect asked for exactly what the sink had committed
    assert all(r.cursor is not None for r in fake.requests)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(operations, min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_no_firehose_event_is_lost_or_duplicated_whatever_happens(
    schedule: list[tuple[str, int]], seed: int
) -> None:
    trio.run(_play, schedule, seed, clock=trio.testing.MockClock(autojump_threshold=0))
