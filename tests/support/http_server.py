"""A real HTTP/1.1 server on loopback for tests of outbound fetches.

Link cards, oEmbed providers, thumbnails and ``/.well-known/atproto-did``
are served from here over real sockets, so the safe fetcher, its redirect
checks, size caps and deadlines are exercised as in production. Routes are
keyed by (host, path): tests give each "site" a hostname and a resolver
that maps every name to 127.0.0.1 (the fetcher's development allowance for
loopback). A route may be slow (``delay``) to test deadlines and breakers.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11
import trio


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts


Route = Reply | Callable[[str], Reply]  # a fixed reply, or one built from the request target


class TestHTTPServer:
    __test__ = False

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str]] = []  # (host, target) in arrival order
        self.port = 0

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, host: str, path: str, reply: Route) -> str:
        self.routes[(host, path)] = reply
        return self.url(host, path)

    def hits(self, host: str, path: str | None = None) -> int:
        return sum(
            1
            for h, target in self.requests
            if h == host and (path is None or urlsplit(target).path == path)
        )

    async def resolve(self, host: str, port: int) -> list[str]:
        """A HostResolver sending every name to this server."""
        return ["127.0.0.1"]

    async def _serve(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            async with stream:
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        conn.receive_data(data)
                        continue
                    if isinstance(event, h11.Request):
                        await self._answer(conn, stream, event)
                        return
                    if isinstance(event, h11.ConnectionClosed):
                        return
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return

    async def _answer(
        self, conn: h11.Connection, stream: trio.SocketStream, req: h11.Request
    ) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in req.headers}
        host = headers.get("host", "").rsplit(":", 1)[0]
        target = req.target.decode()
        self.requests.append((host, target))
        route = self.routes.get((host, urlsplit(target).path))
        if route is None:
            reply = Reply(404, b"not found", "text/plain")
        elif isinstance(route, Reply):
            reply = route
        else:
            reply = route(target)
        if reply.delay:
            await trio.sleep(reply.delay)
        out = [
            ("content-type", reply.content_type),
            ("content-length", str(len(reply.body))),
            ("connection", "close"),
            *reply.headers.items(),
        ]
        data = conn.send(h11.Response(status_code=reply.status, headers=out))
        data += conn.send(h11.Data(data=reply.body)) if reply.body else b""
        data += conn.send(h11.EndOfMessage())
        await stream.send_all(data)


@asynccontextmanager
async def http_server() -> AsyncIterator[TestHTTPServer]:
    server = TestHTTPServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server._serve, 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
