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
