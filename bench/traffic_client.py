"""The traffic benchmark's load generator: users following realistic sessions.

Each user has its own keep-alive HTTP/1.1 connection (raw Trio sockets, as
``bench/loadgen.py``) and runs sessions one after the other, waiting an
exponentially distributed think time (mean ``think`` seconds; 0 = closed
loop, for saturation) before every request. A session follows what the
server answered: the next pages of a feed through its cursor, posts picked
from the page just read (post.get, then the comment thread, sometimes its
next page), the post's community (every sort, community.get), the author's
profile and posts, community.list.

Signed-in users (the first ``signed_in`` share of the users) start from
their timeline and send a freshly minted service-auth token (ES256, unique
``jti``, ``lxm`` = the method) with every request, as a PDS proxying for
them would; anonymous users start from discover or a community. A refused
request (503 from admission control) is followed by the wait its
``Retry-After`` asks for, as a well-behaved client would. Each user
with a viewer uses its own bench viewer, so timelines and viewer state are
distinct and the response caches see realistic (low) hit rates.

Run by ``bench/traffic.py`` (pinned to the client's cores); prints one JSON
object with per-stage, per-endpoint latencies. ``--spec`` is a JSON string
or file with: base, mode ("sessions" or "hello"), stages [{users, seconds,
think, label}], signed_in, viewers, viewer_offset, targets, audience, seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import trio

from bench.traffic_world import Targets, viewer_did, viewer_key
from coves.atproto.keys import PrivateKey
from coves.base64url import b64url_encode

X = "/xrpc/"
TIMELINE = "social.coves.feed.getTimeline"
DISCOVER = "social.coves.feed.getDiscover"
COMMUNITY_FEED = "social.coves.feed.getCommunity"
COMMENTS = "social.coves.community.comment.getComments"
POST_GET = "social.coves.community.post.get"
COMMUNITY_GET = "social.coves.community.get"
COMMUNITY_LIST = "social.coves.community.list"
PROFILE = "social.coves.actor.getProfile"
ACTOR_POSTS = "social.coves.actor.getPosts"

FEED_POST = re.compile(rb'"post":\{"uri":"(at://[^"]+)"')
AUTHOR = re.compile(rb'"author":\{"did":"([^"]+)"')
FEED_SORTS = (("hot", 0.40), ("new", 0.25), ("top", 0.25), ("controversial", 0.10))
TIMEFRAMES = ("day", "week", "month", "all")
COMMENT_SORTS = (("hot", 0.6), ("new", 0.25), ("top", 0.15))
LIST_SORTS = ("popular", "active", "new", "alphabetical")
_JWT_HEADER = b64url_encode(orjson.dumps({"typ": "JWT", "alg": "ES256"}))


@dataclass
class Stage:
    label: str
    users: int
    seconds: float
    think: float
    record: bool = True


@dataclass
class StageResult:
    label: str
    users: int
    think: float
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0

    def record(self, endpoint: str, status: int, ms: float) -> None:
        self.statuses[status] += 1
        # Latency of what was served: shed (503) and refused requests are counted, not timed.
        if status == 200:
            self.latencies[endpoint].append(ms)
        else:
            self.latencies[f"{endpoint} [{status}]"].append(ms)

    def summary(self, cpu_seconds: float) -> dict[str, Any]:
        ok = [v for k, vs in self.latencies.items() if "[" not in k for v in vs]
        endpoints = {
            name: _percentiles(values) | {"n": len(values)}
            for name, values in sorted(self.latencies.items())
        }
        total = sum(self.statuses.values())
        return {
            "label": self.label,
            "users": self.users,
            "think": self.think,
            "seconds": round(self.seconds, 3),
            "requests": total,
            "rps": round(total / self.seconds, 1) if self.seconds else 0.0,
            "goodput": round(len(ok) / self.seconds, 1) if self.seconds else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "shed": self.statuses.get(503, 0),
            "errors": self.errors,
            "ok": _percentiles(ok),
            "endpoints": endpoints,
            "client_cpu": round(cpu_seconds / self.seconds, 3) if self.seconds else 0.0,
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 2)

    return {"p50": at(50), "p95": at(95), "p99": at(99)}


class Conn:
    """One keep-alive HTTP/1.1 connection that returns (status, body)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def request(self, raw: bytes) -> tuple[int, bytes, bool, float]:
        """(status, body, server closes, Retry-After seconds or 0)."""
        await self.stream.send_all(raw)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buffer[:end]).split(b"\r\n")
        del self.buffer[: end + 4]
        status = int(head[0].split(b" ", 2)[1])
        length = -1
        chunked = close = False
        retry_after = 0.0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif key == b"connection":
                close = value.strip().lower() == b"close"
            elif key == b"retry-after":
                try:
                    retry_after = float(value.strip())
                except ValueError:
                    retry_after = 1.0
        if length >= 0:
            body = await self._exactly(length)
        elif chunked:
            parts = []
            while True:
                size = int((await self._line()).split(b";")[0], 16)
                parts.append(await self._exactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            body = b""
        return status, body, close, retry_after


class User:
    def __init__(
        self,
        client: Client,
        index: int,
        viewer: int | None,
        key: PrivateKey | None,
        rnd: random.Random,
        think: float,
    ) -> None:
        self.c = client
        self.index = index
        self.viewer = viewer
        self.did = viewer_did(viewer) if viewer is not None else None
        self.key = key
        self.rnd = rnd
        self.think = think
        self.conn: Conn | None = None

    # -- one request ---------------------------------------------------------------
    def _token(self, nsid: str) -> str:
        assert self.key is not None
        now = int(time.time())
        payload = {
            "iss": self.did,
            "aud": self.c.audience,
            "exp": now + 60,
            "iat": now,
            "jti": secrets.token_hex(12),
            "lxm": nsid,
        }
        signing_input = _JWT_HEADER + "." + b64url_encode(orjson.dumps(payload))
        return signing_input + "." + b64url_encode(self.key.sign(signing_input.encode()))

    async def fetch(self, label: str, nsid: str, params: dict[str, Any]) -> bytes | None:
        if self.think > 0:
            await trio.sleep(self.rnd.expovariate(1 / self.think))
        if trio.current_time() >= self.c.deadline:
            raise _StageOver
        if not nsid:
            path = self.c.hello_path
        else:
            path = X + nsid + ("?" + urlencode(params, doseq=True) if params else "")
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.c.host}", "Accept: application/json"]
        if self.key is not None:
            lines.append(f"Authorization: Bearer {self._token(nsid)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = Conn(await trio.open_tcp_stream(self.c.hostname, self.c.port))
            status, body, close, retry_after = await self.conn.request(raw)
        except (OSError, ConnectionError, trio.BrokenResourceError, ValueError):
            self.c.result.errors += 1
            await self._drop()
            return None
        ms = (time.perf_counter() - started) * 1000
        self.c.result.record(label, status, ms)
        if close:
            await self._drop()
        if retry_after > 0:
            # As a well-behaved client: shed (503) or limited (429), wait as told.
            await trio.sleep(min(retry_after, 5.0))
        return body if status == 200 else None

    async def _drop(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.stream.aclose()

    # -- sessions ------------------------------------------------------------------
    def _sort(self, table: tuple[tuple[str, float], ...]) -> str:
        roll = self.rnd.random()
        for name, share in table:
            roll -= share
            if roll <= 0:
                return name
        return table[0][0]

    def _community(self) -> str:
        communities = self.c.targets.communities
        return communities[min(len(communities) - 1, int(self.rnd.paretovariate(1.1)) - 1)]

    async def _feed(self, label: str, nsid: str, params: dict[str, Any]) -> bytes | None:
        """A feed's first page, then 0-3 next pages through its cursor."""
        sort = self._sort(FEED_SORTS)
        params = {**params, "sort": sort}
        if sort == "top":
            params["timeframe"] = self.rnd.choice(TIMEFRAMES)
        body = await self.fetch(f"{label} {sort}", nsid, params)
        last = body
        pages = 0
        while body is not None and pages < 3 and self.rnd.random() < 0.55:
            cursor = _cursor(body)
            if cursor is None:
                break
            body = await self.fetch(f"{label} {sort} next", nsid, {**params, "cursor": cursor})
            last = body or last
            pages += 1
        return last

    async def session(self) -> None:
        if self.did is not None:
            page = await self._feed("getTimeline", TIMELINE, {})
        elif self.rnd.random() < 0.5:
            page = await self._feed("getDiscover", DISCOVER, {})
        else:
            community = {"community": self._community()}
            page = await self._feed("getCommunity", COMMUNITY_FEED, community)
        posts = FEED_POST.findall(page or b"")[:15]
        authors = AUTHOR.findall(page or b"")[:15]
        for _ in range(min(len(posts), int(self.rnd.expovariate(1 / 1.5)))):
            if self.rnd.random() < 0.05:
                uri = self.c.targets.thread_post  # the one very popular thread
            else:
                uri = self.rnd.choice(posts).decode()
            await self.fetch("post.get", POST_GET, {"uris": uri})
            sort = self._sort(COMMENT_SORTS)
            thread = await self.fetch(f"getComments {sort}", COMMENTS, {"post": uri, "sort": sort})
            if thread is not None and self.rnd.random() < 0.2:
                cursor = _cursor(thread)
                if cursor is not None:
                    await self.fetch(
                        f"getComments {sort} next",
                        COMMENTS,
                        {"post": uri, "sort": sort, "cursor": cursor},
                    )
            community = uri[5:].split("/", 1)[0]
            if self.rnd.random() < 0.3:
                await self.fetch("community.get", COMMUNITY_GET, {"community": community})
                await self._feed("getCommunity", COMMUNITY_FEED, {"community": community})
            if authors and self.rnd.random() < 0.15:
                actor = self.rnd.choice(authors).decode()
                await self.fetch("getProfile", PROFILE, {"actor": actor})
                if self.rnd.random() < 0.4:
                    await self.fetch("actor.getPosts", ACTOR_POSTS, {"actor": actor})
        if self.rnd.random() < 0.1:
            await self.fetch(
                "community.list", COMMUNITY_LIST, {"sort": self.rnd.choice(LIST_SORTS)}
            )

    async def run(self) -> None:
        if self.think > 0:  # spread the first requests instead of a thundering start
            await trio.sleep(self.rnd.uniform(0, self.think))
        try:
            while True:
                if self.c.mode == "hello":
                    await self.fetch("hello", "", {})
                else:
                    await self.session()
        except _StageOver:
            pass
        finally:
            await self._drop()


class _StageOver(Exception):
    pass


def _cursor(body: bytes) -> str | None:
    at = body.rfind(b'"cursor":"')
    if at < 0:
        return None
    start = at + 10
    end = body.find(b'"', start)
    return body[start:end].decode() if end > start else None


class Client:
    def __init__(self, spec: dict[str, Any]) -> None:
        base = urlsplit(spec["base"])
        self.hostname = base.hostname or "127.0.0.1"
        self.port = base.port or 80
        self.host = base.netloc
        self.mode = spec.get("mode", "sessions")
        self.hello_path = base.path or "/"
        self.audience = spec.get("audience", "did:web:localhost")
        self.signed_in = float(spec.get("signed_in", 0.4))
        self.viewers = int(spec.get("viewers", 0))
        self.viewer_offset = int(spec.get("viewer_offset", 0))
        self.seed = int(spec.get("seed", 1))
        self.targets = (
            Targets.load(Path(spec["targets"]))
            if spec.get("targets")
            else Targets(0, [], [], [], [], "")
        )
        self.stages = [Stage(**s) for s in spec["stages"]]
        self.deadline = 0.0
        self.result = StageResult("", 0, 0.0)
        self._keys: dict[int, PrivateKey] = {}

    def key(self, viewer: int) -> PrivateKey:
        key = self._keys.get(viewer)
        if key is None:
            key = self._keys[viewer] = viewer_key(viewer)
        return key

    async def run(self) -> list[dict[str, Any]]:
        out = []
        for number, stage in enumerate(self.stages):
            rnd = random.Random(self.seed * 1000 + number)
            signed = round(stage.users * self.signed_in) if self.viewers else 0
            users = []
            for i in range(stage.users):
                viewer = None
                if self.mode == "sessions" and i < signed:
                    # Every stage gets other viewers than the last, so no timeline starts warm.
                    viewer = (self.viewer_offset + number * stage.users + i) % self.viewers
                key = self.key(viewer) if viewer is not None else None
                users.append(User(self, i, viewer, key, random.Random(rnd.random()), stage.think))
            self.result = StageResult(stage.label, stage.users, stage.think)
            print(f"stage {stage.label}: start", file=sys.stderr, flush=True)
            cpu = time.process_time()
            started = trio.current_time()
            self.deadline = started + stage.seconds
            async with trio.open_nursery() as nursery:
                for user in users:
                    nursery.start_soon(user.run)
                # Stragglers (a request still in flight) are cut off shortly after the end.
                nursery.cancel_scope.deadline = self.deadline + 10.0
            self.result.seconds = trio.current_time() - started
            if stage.record:
                out.append(self.result.summary(time.process_time() - cpu))
            print(f"stage {stage.label}: done", file=sys.stderr, flush=True)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON, or @path to a JSON file")
    parser.add_argument("--cpu", default=None, help="comma-separated cores to pin to")
    args = parser.parse_args()
    spec = json.loads(Path(args.spec[1:]).read_text() if args.spec.startswith("@") else args.spec)
    if args.cpu and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpu.split(",")})
    client = Client(spec)
    results = trio.run(client.run)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
