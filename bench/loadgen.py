"""A closed-loop HTTP/1.1 load generator on raw Trio sockets.

Each of N connections sends a request, waits for the whole response, and
sends the next (keep-alive), for a fixed duration; latencies are measured
per request. It parses only what Hypercorn sends (Content-Length or
chunked bodies), which keeps it several times cheaper per request than the
server it measures, so on a 2-core machine one core drives the other.

Reused by every benchmark: ``run_load(...)`` returns a :class:`LoadResult`.
Command line: ``python -m bench.loadgen http://127.0.0.1:8081/xrpc/_health``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio


@dataclass
class LoadResult:
    label: str
    requests: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: Counter[int]
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def row(self) -> str:
        statuses = ",".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.label:<34} {self.rps:>8.0f} req/s  p50 {self.percentile(50):>6.1f} ms  "
            f"p95 {self.percentile(95):>6.1f} ms  p99 {self.percentile(99):>6.1f} ms  "
            f"n={self.requests} errors={self.errors} status={statuses}"
        )


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    async def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    async def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            await self._fill()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def response(self) -> tuple[int, bool]:
        """Read one response; return (status, server wants to close)."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self._exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self._line()).split(b";")[0], 16)
                await self._exactly(size + 2)
                if size == 0:
                    break
        return status, headers.get("connection", "").lower() == "close"


async def _worker(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    deadline: float,
    result: LoadResult,
) -> None:
    cycle = itertools.islice(itertools.cycle(requests), offset % len(requests), None)
    conn: _Conn | None = None
    while time.perf_counter() < deadline:
        try:
            if conn is None:
                conn = _Conn(await trio.open_tcp_stream(host, port))
            request = next(cycle)
            started = time.perf_counter()
            await conn.stream.send_all(request)
            status, close = await conn.response()
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
            result.requests += 1
            if close:
                await conn.stream.aclose()
                conn = None
        except (OSError, ConnectionError, trio.BrokenResourceError, ValueError):
            result.errors += 1
            if conn is not None:
                await conn.stream.aclose()
            conn = None
            await trio.sleep(0.01)
    if conn is not None:
        await conn.stream.aclose()


def build_request(url: str, headers: dict[str, str] | None = None) -> bytes:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _run(
    label: str,
    urls: Sequence[str],
    connections: int,
    duration: float,
    warmup: float,
    headers: dict[str, str] | None,
) -> LoadResult:
    parts = urlsplit(urls[0])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [build_request(u, headers) for u in urls]
    if warmup > 0:
        scratch = LoadResult(label, 0, warmup, [], Counter(), 0)
        end = time.perf_counter() + warmup
        async with trio.open_nursery() as nursery:
            for i in range(connections):
                nursery.start_soon(_worker, host, port, requests, i, end, scratch)
    result = LoadResult(label, 0, duration, [], Counter(), 0)
    started = time.perf_counter()
    deadline = started + duration
    async with trio.open_nursery() as nursery:
        for i in range(connections):
            nursery.start_soon(_worker, host, port, requests, i, deadline, result)
    result.seconds = time.perf_counter() - started
    return result


def run_load(
    label: str,
    urls: Sequence[str],
    *,
    connections: int = 100,
    duration: float = 10.0,
    warmup: float = 2.0,
    headers: dict[str, str] | None = None,
    cpu: int | None = None,
) -> LoadResult:
    """Drive ``urls`` (cycled, all on one host) closed-loop; blocking."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    return trio.run(_run, label, list(urls), connections, duration, warmup, headers)


def summary(results: Sequence[LoadResult], baseline: LoadResult) -> str:
    lines = [r.row() for r in results]
    for r in results:
        if r is not baseline and baseline.rps:
            lines.append(
                f"ratio {r.label} / {baseline.label}: throughput {r.rps / baseline.rps:.2f}x, "
                f"p50 {r.percentile(50) / baseline.percentile(50):.2f}x"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", nargs="+")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    result = run_load(
        "load", args.url, connections=args.connections, duration=args.duration, warmup=args.warmup
    )
    print(result.row())
    print(f"mean latency {statistics.fmean(result.latencies_ms):.1f} ms")


if __name__ == "__main__":
    main()
