"""Random schedules of drops, silences, refusals and database outages lose nothing.

Hypothesis draws a schedule; each example runs under its own MockClock
(autojump) over memory streams, so hours of simulated trouble take
milliseconds. Whatever happens, every published event ends up applied
exactly once and in publication order.
"""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.consumer import publish_votes, running_consumer, wait_for
from tests.support.fake_jetstream import FakeJetstream
from tests.support.memory_sink import MemorySink, event_key

operations = st.one_of(
    st.tuples(st.just("publish"), st.integers(1, 30)),
    st.tuples(st.just("drop"), st.booleans()),
    st.tuples(st.just("silence"), st.just(0)),
    st.tuples(st.just("ignore_pings"), st.just(0)),
    st.tuples(st.just("db_down"), st.integers(1, 300)),
    st.tuples(st.just("refuse"), st.integers(1, 300)),
    st.tuples(st.just("sleep"), st.integers(0, 120)),
)


async def _play(schedule: list[tuple[str, int]], seed: int) -> None:
    fake, sink = FakeJetstream(), MemorySink()
    published: list[dict[str, Any]] = []
    with trio.fail_after(50_000):
        async with running_consumer(
            fake,
            sink,
            rng=random.Random(seed),
            batch_size=7,
            batch_ms=50,
            queue_frames=10,
            idle_timeout=30.0,
            ping_interval=10.0,
            pong_timeout=5.0,
            breaker_threshold=3,
            breaker_cooldown=45.0,
        ) as consumer:
            await fake.wait_for_connections(1)
            for n, (op, arg) in enumerate(schedule):
                if op == "publish":
                    published += publish_votes(fake, arg, f"s{n}-")
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
            # everything published must arrive within a few backoff/breaker cycles
            with trio.move_on_after(1_000):
                await wait_for(lambda: len(sink.applied) >= len(published), poll=1.0)
            await trio.sleep(20.0)  # let any late duplicate show itself
            assert consumer.gaps == 0
    assert sink.applied_keys() == [event_key(e) for e in published]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(operations, min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_no_event_is_lost_or_duplicated_whatever_happens(
    schedule: list[tuple[str, int]], seed: int
) -> None:
    trio.run(_play, schedule, seed, clock=trio.testing.MockClock(autojump_threshold=0))
