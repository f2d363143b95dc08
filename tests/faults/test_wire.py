"""Raw request lines and connection handling on a real socket (Hypercorn + the app).

Everything a client can see is ``{"error", "message"}`` with the right status,
including what Hypercorn's parser refuses before the app runs, and a response
that says ``Connection: close`` (or answers HTTP/1.0) really closes the socket,
on the Quart-served routes too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from hypercorn.config import Config

from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.metrics import Metrics
from coves.xrpc.app import create_app
from nurseries.xrpc_server import XRPCServer
from tests.faults.fuzzing import parse


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """The real server on an ephemeral port; its database is never reachable."""
    db = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    ctx = AppContext(settings=test_settings(), db=db, metrics=Metrics())
    server = XRPCServer(create_app(ctx), "127.0.0.1", 0, grace=1.0)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(server.run)
        yield int(binds[0].rsplit(":", 1)[1])
        server.request_stop()


async def exchange(port: int, raw: bytes, wait: float = 2.0) -> tuple[bytes, bool]:
    """Send ``raw``; return what came back within ``wait`` and whether the server closed."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    data = b""
    closed = False
    try:
        await stream.send_all(raw)
        with trio.move_on_after(wait):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
    finally:
        await stream.aclose()
    return data, closed


def assert_xrpc_error(data: bytes, status: int) -> dict[str, str]:
    got, headers, body = parse(data)
    assert got == status, data[:300]
    assert headers.get("content-type") == "application/json", headers
    decoded = orjson.loads(body)
    assert isinstance(decoded["error"], str) and isinstance(decoded["message"], str)
    return headers


@pytest.mark.parametrize(
    ("name", "raw", "status"),
    [
        ("headers over 16 KB", b"GET /xrpc/_health?x=" + b"a" * 100_000 + b" HTTP/1.1\r\n", 431),
        ("bad bytes in the path", b"GET /\xff\x01 HTTP/1.1\r\nHost: x\r\n", 400),
        ("NUL in a header", b"GET /xrpc/_health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n", 400),
        ("no Host", b"GET /xrpc/_health HTTP/1.1\r\n", 400),
        ("TLS to a plain port", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400),
        (
            "unknown transfer-encoding",
            b"POST /xrpc/a.b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n",
            501,
        ),
        (
            "a bad chunk in a body the app is reading",
            b"POST /xrpc/a.b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            "two content-lengths",
            b"POST /xrpc/a.b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
            400,
        ),
    ],
)
async def test_parser_refusals_are_xrpc_shaped_and_close(
    port: int, name: str, raw: bytes, status: int
) -> None:
    with trio.fail_after(10):
        data, closed = await exchange(port, raw + b"\r\n")
    assert_xrpc_error(data, status)
    assert closed, name


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n", 400),
        (b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n", 400),
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n", 404),
        (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n", 405),
        (b"POST /xrpc/_health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n", 405),
        (b"GET /xrpc/social.coves.nope HTTP/1.1\r\nHost: x\r\n", 501),  # XRPC's unknown method
        (b"GET /xrpc/a..b HTTP/1.1\r\nHost: x\r\n", 400),  # not a method name at all
        (b"GET /xrpc/a%00b.c HTTP/1.1\r\nHost: x\r\n", 400),
    ],
)
async def test_odd_targets_get_xrpc_errors(port: int, raw: bytes, status: int) -> None:
    with trio.fail_after(10):
        data, _closed = await exchange(port, raw + b"\r\n", wait=1.0)
    assert_xrpc_error(data, status)


async def test_absolute_form_is_served_as_its_path(port: int) -> None:
    with trio.fail_after(10):
        absolute, _ = await exchange(
            port,
            b"GET http://coves.test/xrpc/social.coves.nope?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            1.0,
        )
        health, _ = await exchange(
            port, b"GET https://coves.test/xrpc/_health HTTP/1.1\r\nHost: x\r\n\r\n", 1.0
        )
    assert orjson.loads(parse(absolute)[2])["error"] == "MethodNotImplemented"
    status, _headers, body = parse(health)
    assert status == 503 and orjson.loads(body)["database"]["reachable"] is False


async def test_double_slash_redirects_with_an_xrpc_body_and_a_relative_location(
    port: int,
) -> None:
    with trio.fail_after(10):
        data, _ = await exchange(
            port, b"GET //xrpc//_health?x=1 HTTP/1.1\r\nHost: evil.example\r\n\r\n", 1.0
        )
        hostile, _ = await exchange(port, b"GET //evil.example/x HTTP/1.1\r\nHost: x\r\n\r\n", 1.0)
    headers = assert_xrpc_error(data, 308)
    assert headers["location"] == "/xrpc/_health?x=1"
    assert assert_xrpc_error(hostile, 308)["location"] == "/evil.example/x"


@pytest.mark.parametrize(
    "target", [b"/xrpc/_health", b"/metrics", b"/.well-known/did.json", b"/nope", b"//xrpc/a.b"]
)
@pytest.mark.parametrize(
    ("version", "extra"), [(b"HTTP/1.1", b"Host: x\r\nConnection: close\r\n"), (b"HTTP/1.0", b"")]
)
async def test_connection_close_and_http10_close_the_socket(
    port: int, target: bytes, version: bytes, extra: bytes
) -> None:
    with trio.fail_after(10):
        data, closed = await exchange(
            port, b"GET " + target + b" " + version + b"\r\n" + extra + b"\r\n", 3.0
        )
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    assert closed, f"{target!r} {version!r} left the socket open"


async def test_keep_alive_connections_serve_again_after_a_quart_route(port: int) -> None:
    """The fix must not close keep-alive connections: two requests on one socket."""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            for target in (b"/metrics", b"/nope", b"/xrpc/a.b"):
                await stream.send_all(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while b"\r\n\r\n" not in data:
                    data += await stream.receive_some(65536)
                _status, headers, body = parse(data)
                while len(body) < int(headers["content-length"]):
                    body += await stream.receive_some(65536)
                assert headers.get("connection") != "close"
        finally:
            await stream.aclose()


async def test_shutdown_gives_in_flight_requests_the_grace_and_idle_ones_none() -> None:
    """After request_stop: the idle connection closes at once, the slow request is
    answered, and the server is gone as soon as it is (not after the whole grace)."""
    from coves.xrpc.routing import Router, XRPCRequest

    router = Router()
    release = trio.Event()

    @router.query("test.slow")
    async def slow(req: XRPCRequest) -> Any:
        await release.wait()
        return {"done": True}

    db = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    ctx = AppContext(settings=test_settings(), db=db, metrics=Metrics())
    server = XRPCServer(create_app(ctx, router.endpoints), "127.0.0.1", 0, grace=30.0)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(server.run)
            port = int(binds[0].rsplit(":", 1)[1])
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            busy = await trio.open_tcp_stream("127.0.0.1", port)
            await busy.send_all(b"GET /xrpc/test.slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await trio.sleep(0.3)
            started = trio.current_time()
            server.request_stop()
            assert await idle.receive_some(100) == b""  # closed at once
            assert trio.current_time() - started < 2
            await trio.sleep(0.5)
            release.set()
            answer = b""
            while b'"done":true' not in answer:
                chunk = await busy.receive_some(65536)
                assert chunk, "the in-flight request was cut off"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
        assert trio.current_time() - started < 5  # not the 30 s grace
        await idle.aclose()
        await busy.aclose()


async def test_a_stalled_body_gets_a_408_after_the_body_timeout(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Slowloris on the body: the head is in, a few bytes of the body, then nothing.
    Hypercorn's timer stopped with the head, so the dispatcher's deadline answers."""
    from coves.auth.base import AuthPolicy
    from coves.xrpc.dispatch import BODY_TIMEOUT_SECONDS
    from coves.xrpc.routing import Router, XRPCRequest

    router = Router()

    @router.procedure("test.echo", auth=AuthPolicy.NONE)
    async def echo(req: XRPCRequest) -> Any:
        return {"got": req.body}

    db = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    app = create_app(
        AppContext(settings=test_settings(), db=db, metrics=Metrics()), router.endpoints
    )
    sent: list[dict[str, Any]] = []
    parts = [{"type": "http.request", "body": b'{"a"', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if parts:
            return parts.pop()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/xrpc/test.echo",
        "raw_path": b"/xrpc/test.echo",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"x"),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8081),
        "extensions": {},
    }
    started = trio.current_time()
    with trio.fail_after(BODY_TIMEOUT_SECONDS + 5):
        await app(scope, receive, send)
    assert trio.current_time() - started >= BODY_TIMEOUT_SECONDS
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 408, (start, body)
    assert orjson.loads(body)["error"] == "RequestTimeout"
    assert (b"connection", b"close") in [(bytes(n).lower(), bytes(v)) for n, v in start["headers"]]


async def test_a_request_head_that_never_ends_is_closed_after_the_keep_alive_timeout() -> None:
    """Slowloris on the head: Hypercorn's idle timer runs from the connection (or the
    last response) until a whole head is in, so a trickled head is cut off, however
    many bytes keep coming. The production figure is 75 s; 1 s here."""

    class QuickServer(XRPCServer):
        def config(self) -> Config:
            config = super().config()
            config.keep_alive_timeout = 1.0
            return config

    db = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    ctx = AppContext(settings=test_settings(), db=db, metrics=Metrics())
    server = QuickServer(create_app(ctx), "127.0.0.1", 0, grace=1.0)
    assert XRPCServer(create_app(ctx), "127.0.0.1", 0).config().keep_alive_timeout == 75
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(server.run)
            stream = await trio.open_tcp_stream("127.0.0.1", int(binds[0].rsplit(":", 1)[1]))
            started = trio.current_time()
            closed = False
            await stream.send_all(b"GET /xrpc/_health HTTP/1.1\r\n")
            try:
                for i in range(40):  # a header line every 0.1 s, for up to 4 s
                    await stream.send_all(f"X-{i}: {i}\r\n".encode())
                    with trio.move_on_after(0.1):
                        if await stream.receive_some(100) == b"":
                            closed = True
                            break
            except trio.BrokenResourceError:
                closed = True
            elapsed = trio.current_time() - started
            await stream.aclose()
            server.request_stop()
    assert closed and 0.9 < elapsed < 3, (closed, elapsed)
