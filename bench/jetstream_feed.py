"""A live Jetstream for the traffic benchmark: events at a set rate over a real websocket.

Coves' real consumer connects to it (``JETSTREAM_URL``) and indexes what it
sends through the production indexer, so ingestion competes with the reads
exactly as it would in production. Events address the bench database
(``traffic-targets.json``, written by ``bench/traffic.py``): votes on hot posts
and recent comments (some by the signed-in bench viewers, so their cached
timelines are invalidated), comments and replies, new posts in busy
communities, subscriptions. ``time_us`` is the wall clock at publication,
so the consumer's cursor gives the ingestion lag directly.

The server keeps the last ``--window`` seconds of events (a ring) and
honours ``cursor`` like Jetstream: a reconnecting consumer resumes where it
left off, and one that fell further behind than the ring skips ahead (the
count of skipped events is printed at exit).

    .venv/bin/python -m bench.jetstream_feed --targets /tmp/coves-readdb/traffic-targets.json \
        --rate 1000 --port 8098
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import signal
import sys
import time
from collections import deque
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
import trio_websocket

from bench.traffic_world import Targets, viewer_did
from tests.support.events import COMMENT, POST, SUBSCRIPTION, VOTE, cid, tid

WORDS = [
    "the",
    "a",
    "rust",
    "python",
    "trio",
    "postgres",
    "garden",
    "cats",
    "bikes",
    "music",
    "film",
    "science",
    "news",
    "games",
]


def _created(time_us: int) -> str:
    stamp = dt.datetime.fromtimestamp(time_us / 1_000_000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(time_us // 1000) % 1000:03d}Z"


class EventMaker:
    """55% votes, 30% comments, 10% posts, 5% subscriptions; skewed to hot content."""

    def __init__(self, targets: Targets, seed: int = 7, viewer_share: float = 0.05) -> None:
        self.t = targets
        self.rnd = random.Random(seed)
        self.viewer_share = viewer_share
        self.new_posts: list[tuple[str, str]] = []  # (uri, cid) made during the run
        self.clock_id = 0

    def _pick(self, items: list[list[str]]) -> list[str]:
        return items[min(len(items) - 1, int(self.rnd.expovariate(1 / 300)))]

    def _actor(self) -> str:
        if self.t.viewers and self.rnd.random() < self.viewer_share:
            return viewer_did(self.rnd.randrange(self.t.viewers))
        return self.rnd.choice(self.t.users)

    def _text(self, n: int) -> str:
        return " ".join(self.rnd.choice(WORDS) for _ in range(n))

    def make(self, now: int) -> bytes:
        self.clock_id = (self.clock_id + 1) % 1024
        key = tid(now, self.clock_id)
        roll = self.rnd.random()
        if roll < 0.10:
            community = self.t.communities[min(len(self.t.communities) - 1,
                                               int(self.rnd.expovariate(1 / 50)))]  # fmt: skip
            repo, collection = community, POST
            record = {
                "community": community,
                "author": self._actor(),
                "title": self._text(8),
                "content": self._text(30),
                "langs": ["en"],
                "createdAt": _created(now),
            }
            uri = f"at://{community}/{POST}/{key}"
            self.new_posts.append((uri, cid(uri)))
            if len(self.new_posts) > 5000:
                del self.new_posts[:1000]
        elif roll < 0.40:
            repo, collection = self._actor(), COMMENT
            if self.t.comments and self.rnd.random() < 0.4:
                parent_uri, parent_cid, root_uri, root_cid = self._pick(self.t.comments)
            else:
                root_uri, root_cid = self._post()
                parent_uri, parent_cid = root_uri, root_cid
            record = {
                "reply": {
                    "root": {"uri": root_uri, "cid": root_cid},
                    "parent": {"uri": parent_uri, "cid": parent_cid},
                },
                "content": self._text(20),
                "langs": ["en"],
                "createdAt": _created(now),
            }
        elif roll < 0.95:
            repo, collection = self._actor(), VOTE
            if self.t.comments and self.rnd.random() < 0.3:
                subject_uri, subject_cid = self._pick(self.t.comments)[:2]
            else:
                subject_uri, subject_cid = self._post()
            record = {
                "subject": {"uri": subject_uri, "cid": subject_cid},
                "direction": "up" if self.rnd.random() < 0.8 else "down",
                "createdAt": _created(now),
            }
        else:
            repo, collection = self._actor(), SUBSCRIPTION
            record = {
                "subject": self.rnd.choice(self.t.communities[:500]),
                "contentVisibility": self.rnd.randint(1, 5),
                "createdAt": _created(now),
            }
        body = {"$type": collection, **record}
        event = {
            "did": repo,
            "time_us": now,
            "kind": "commit",
            "commit": {
                "rev": key,
                "operation": "create",
                "collection": collection,
                "rkey": key,
                "record": body,
                "cid": cid(f"{repo}/{collection}/{key}"),
            },
        }
        return orjson.dumps(event)

    def _post(self) -> tuple[str, str]:
        if self.new_posts and self.rnd.random() < 0.3:
            return self.new_posts[-1 - min(len(self.new_posts) - 1,
                                           int(self.rnd.expovariate(1 / 100)))]  # fmt: skip
        uri, post_cid, _community = self._pick(self.t.posts)
        return uri, post_cid


class Feed:
    def __init__(self, maker: EventMaker, rate: float, window: float) -> None:
        self.maker = maker
        self.rate = rate
        self.window_us = int(window * 1_000_000)
        self.ring: deque[tuple[int, int, str]] = deque()  # (seq, time_us, text)
        self.seq = 0
        self.published = 0
        self.skipped = 0  # events a slow consumer never got (fell out of the ring)
        self.sent = 0
        self.connections = 0
        self._changed = trio.Event()

    async def publish_forever(self) -> None:
        """Publish ``rate`` events a second in 10 ms ticks, on the wall clock."""
        started = time.monotonic()
        tick = 0.01
        while True:
            due = int((time.monotonic() - started) * self.rate) - self.published
            now_us = int(time.time() * 1_000_000)
            last = self.ring[-1][1] if self.ring else 0
            for _ in range(max(0, due)):
                now_us = max(now_us, last + 1)
                last = now_us
                text = self.maker.make(now_us).decode()
                self.seq += 1
                self.ring.append((self.seq, now_us, text))
                self.published += 1
            horizon = now_us - self.window_us
            while self.ring and self.ring[0][1] < horizon:
                self.ring.popleft()
            if due > 0:
                self._changed.set()
                self._changed = trio.Event()
            await trio.sleep(tick)

    def _position(self, cursor: int | None) -> int:
        """The sequence number to start from for a subscriber asking for ``cursor``."""
        if cursor is None or not self.ring:
            return self.seq + 1
        for seq, time_us, _ in self.ring:
            if time_us >= cursor:
                return seq
        return self.seq + 1

    async def handle(self, request: trio_websocket.WebSocketRequest) -> None:
        query = parse_qs(urlsplit(request.path).query)
        cursor = int(query["cursor"][-1]) if query.get("cursor") else None
        ws = await request.accept()
        self.connections += 1
        position = self._position(cursor)
        try:
            while True:
                changed = self._changed
                if not self.ring or position > self.seq:
                    await changed.wait()
                    continue
                first = self.ring[0][0]
                if position < first:
                    self.skipped += first - position
                    position = first
                # Indexed afresh for every event: the ring moves while we send.
                await ws.send_message(self.ring[position - first][2])
                self.sent += 1
                position += 1
        except trio_websocket.ConnectionClosed:
            return


async def serve(targets: Targets, rate: float, port: int, window: float) -> None:
    feed = Feed(EventMaker(targets), rate, window)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: trio_websocket.serve_websocket(
                feed.handle, "127.0.0.1", port, None, task_status=task_status
            )
        )
        nursery.start_soon(feed.publish_forever)
        print(f"READY ws://127.0.0.1:{port}/subscribe", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                break
        print(
            f"published {feed.published} sent {feed.sent} skipped {feed.skipped}"
            f" connections {feed.connections}",
            flush=True,
        )
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--window", type=float, default=120.0, help="seconds of events kept")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    targets = Targets.load(args.targets)
    if not targets.posts or not targets.communities or not targets.users:
        sys.exit("targets file has no posts, communities or users")
    trio.run(serve, targets, args.rate, args.port, args.window)


if __name__ == "__main__":
    main()
