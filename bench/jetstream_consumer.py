"""Jetstream consumer throughput over loopback TCP, against a bare-reader baseline.

    .venv/bin/python bench/jetstream_consumer.py [--events 50000] [--batch-size 500]

The fake Jetstream (tests/support/fake_jetstream.py) replays the same
pre-published vote commits to (a) a bare trio-websocket client that only
reads frames, and (b) the JetstreamConsumer with a sink that only counts,
in the same process and run. The ratio b/a is the consumer's overhead
(batching, channel hand-off, bookkeeping); the absolute numbers are bounded
by the Python fake server and the shared machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from coves.logs import configure_logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coves.ingest.types import BatchResult, Frame
from nurseries.jetstream import ConsumerConfig, JetstreamConsumer, websocket_opener
from tests.support.fake_jetstream import FakeJetstream


class CountingSink:
    def __init__(self, cursor: int) -> None:
        self.cursor = cursor
        self.frames = 0
        self.batches = 0
        self.done = trio.Event()
        self.target = 0

    async def load_cursor(self) -> int | None:
        return self.cursor  # replay everything the fake holds

    async def stage(self, frames: Sequence[Frame], _cpu: Any) -> Sequence[Frame]:
        return frames

    async def commit(self, frames: Sequence[Frame], _meanwhile: Any) -> BatchResult:
        await trio.lowlevel.checkpoint()
        self.frames += len(frames)
        self.batches += 1
        if self.frames >= self.target:
            self.done.set()
        return BatchResult(len(frames), len(frames), 0, 0, None)


START_US = int(time.time() * 1_000_000) - 3600 * 1_000_000


def publish(fake: FakeJetstream, n: int) -> int:
    start = START_US
    size = 0
    for i in range(n):
        event = fake.commit(
            f"did:plc:{i % 997:024d}",
            "social.coves.feed.vote",
            f"3l{i:011d}",
            record={
                "$type": "social.coves.feed.vote",
                "subject": {
                    "uri": f"at://did:plc:{i % 101:024d}/social.coves.community.post/3l{i:011d}",
                    "cid": "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5yyi3xv7ezhaxnq",
                },
                "direction": "up",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
            time_us=start + i,
        )
        size += len(str(event))
    return size // n


async def bare_reader(url: str, n: int) -> float:
    opener = websocket_opener()
    started = time.perf_counter()
    async with opener(f"{url}?cursor={START_US}") as ws:
        for _ in range(n):
            await ws.get_message()
    return time.perf_counter() - started


async def consumer_run(url: str, n: int, batch_size: int) -> tuple[float, int]:
    sink = CountingSink(START_US + 5_000_000)  # the consumer rewinds 5 s
    sink.target = n
    consumer = JetstreamConsumer(
        sink, ConsumerConfig(url=url, batch_size=batch_size, queue_frames=2 * batch_size)
    )
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        await nursery.start(consumer.run)
        await sink.done.wait()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed, sink.batches


async def main(events: int, batch_size: int, rounds: int) -> None:
    fake = FakeJetstream()
    avg = publish(fake, events)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(fake.serve)
        print(f"cores={os.cpu_count()} events={events} avg_frame~{avg}B batch_size={batch_size}")
        for r in range(rounds):
            bare = await bare_reader(url, events)
            took, batches = await consumer_run(url, events, batch_size)
            print(
                f"round {r + 1}: bare reader {events / bare:,.0f} frames/s | "
                f"consumer {events / took:,.0f} frames/s ({batches} batches, "
                f"avg {events / batches:.0f}/batch) | ratio {bare / took:.2f}"
            )
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning", "console")
    trio.run(main, args.events, args.batch_size, args.rounds)
