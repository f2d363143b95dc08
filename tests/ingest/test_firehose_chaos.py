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
from tests.support.consumer import wait_for
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
    published: list[tuple[Any, ...]] = []
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(
            url="ws://pds.test",
            kind=FIREHOSE,
            name="firehose:pds.test",
            rewind_seconds=0.0,
            batch_size=7,
            batch_ms=50,
            queue_frames=10,
            idle_timeout=30.0,
            ping_interval=10.0,
            pong_timeout=5.0,
            breaker_threshold=3,
            breaker_cooldown=45.0,
        ),
        opener=fake.opener(),
        rng=random.Random(seed),
    )
    with trio.fail_after(50_000):
        async with fake.running(), trio.open_nursery() as nursery:
            await nursery.start(consumer.run)
            await fake.wait_for_connections(1)
            for n, (op, arg) in enumerate(schedule):
                if op == "publish":
                    published += _publish(fake, arg, f"s{n}k")
                elif op == "drop":
                    await fake.drop(abnormal=bool(arg))
                elif op == "silence":
                    fake.go_silent()
                elif op == "ignore_pings":
                    fake.stop_answering_pings()
                elif op == "db_down":
                    sink.down = True
                    await trio.sleep(arg)
                    sink.down = False
                elif op == "refuse":
                    fake.refuse(503)
                    await trio.sleep(arg)
                    fake.refuse(None)
                else:
                    await trio.sleep(arg)
            with trio.move_on_after(1_000):
                await wait_for(lambda: len(sink.applied) >= len(published), poll=1.0)
            await trio.sleep(20.0)  # let any late duplicate show itself
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
