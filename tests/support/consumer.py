"""Helpers for the Jetstream consumer tests (not fixtures: plain functions)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from coves.metrics import Metrics
from nurseries.jetstream import ConsumerConfig, JetstreamConsumer
from tests.support.fake_jetstream import FakeJetstream
from tests.support.memory_sink import MemorySink

VOTE = "social.coves.feed.vote"
POST = "social.coves.community.post"


class MaxRandom(random.Random):
    """Full jitter drawing the top of its range: delays equal the ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def wait_for(predicate: Callable[[], bool], *, poll: float = 0.01) -> None:
    """Poll until ``predicate()``; callers bound it with ``trio.fail_after``."""
    while not predicate():
        await trio.sleep(poll)


@asynccontextmanager
async def running_consumer(
    fake: FakeJetstream,
    sink: MemorySink,
    *,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
    **config: Any,
) -> AsyncIterator[JetstreamConsumer]:
    """A consumer wired to ``fake`` over memory streams, cancelled at the end."""
    settings: dict[str, Any] = {"url": "ws://jetstream.test/subscribe"}
    settings.update(config)
    consumer = JetstreamConsumer(
        sink,
        ConsumerConfig(**settings),
        opener=fake.opener(),
        metrics=metrics,
        rng=rng or random.Random(7),
    )
    async with fake.running(), trio.open_nursery() as nursery:
        await nursery.start(consumer.run)
        yield consumer
        nursery.cancel_scope.cancel()


def publish_votes(fake: FakeJetstream, n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [fake.commit("did:plc:voter", VOTE, f"{prefix}{i}") for i in range(n)]


# The chaos tests' consumer settings: short timeouts so schedules exercise every path.
CHAOS_CONFIG: dict[str, Any] = {
    "batch_size": 7,
    "batch_ms": 50,
    "queue_frames": 10,
    "idle_timeout": 30.0,
    "ping_interval": 10.0,
    "pong_timeout": 5.0,
    "breaker_threshold": 3,
    "breaker_cooldown": 45.0,
}


async def play_schedule(
    fake: FakeJetstream,
    sink: MemorySink,
    schedule: list[tuple[str, int]],
    publish: Callable[[int, str], list[Any]],
) -> list[Any]:
    """Run a chaos schedule against a running consumer; returns what was published
    (``publish(n, prefix)``'s keys), once everything has had time to arrive."""
    published: list[Any] = []
    for n, (op, arg) in enumerate(schedule):
        if op == "publish":
            published += publish(arg, f"s{n}k")
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
    return published
