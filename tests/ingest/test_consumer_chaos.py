"""Random schedules of drops, silences, refusals and database outages lose nothing.

Hypothesis draws a schedule; each example runs under its own MockClock
(autojump) over memory streams, so hours of simulated trouble take
milliseconds. Whatever happens, every published event ends up applied
exactly once and in publication order.
"""

from __future__ import annotations

import random

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.consumer import CHAOS_CONFIG, play_schedule, publish_votes, running_consumer
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
    with trio.fail_after(50_000):
        async with running_consumer(
            fake, sink, rng=random.Random(seed), **CHAOS_CONFIG
        ) as consumer:
            await fake.wait_for_connections(1)
            published = await play_schedule(
                fake,
                sink,
                schedule,
                lambda n, prefix: [event_key(e) for e in publish_votes(fake, n, prefix)],
            )
            assert consumer.gaps == 0
    assert sink.applied_keys() == published


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(operations, min_size=1, max_size=12), seed=st.integers(0, 2**16))
def test_no_event_is_lost_or_duplicated_whatever_happens(
    schedule: list[tuple[str, int]], seed: int
) -> None:
    trio.run(_play, schedule, seed, clock=trio.testing.MockClock(autojump_threshold=0))
