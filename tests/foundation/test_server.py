"""The XRPC server child over real sockets: draining on stop, streamed bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import trio

from coves.auth.base import AuthPolicy
from coves.xrpc.app import create_app
from coves.xrpc.routing import Router, XRPCRequest
from nurseries.xrpc_server import XRPCServer
from tests.foundation.conftest import offline_context


def slow_app() -> Any:
    router = Router()

    @router.query("test.slow")
    async def slow(req: XRPCRequest) -> Any:
        await trio.sleep(0.5)
        return {"done": True}

    @router.procedure("test.upload", auth=AuthPolicy.NONE)
    async def upload(req: XRPCRequest) -> Any:
        return {"ok": True}

    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(max_request_body_bytes=1000))
    return create_app(ctx, router.endpoints)


async def test_stop_drains_in_flight_requests_then_refuses_new_ones() -> None:
    server = XRPCServer(slow_app(), "127.0.0.1", 0, grace=5.0)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(server.run)
            base = binds[0]
            results: list[int] = []

            async def call() -> None:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"{base}/xrpc/test.slow")
                    results.append(response.status_code)

            nursery.start_soon(call)
            await trio.sleep(0.2)  # the request is in flight
            server.request_stop()
        assert results == [200]
        async with httpx.AsyncClient() as client:
            try:
                await client.get(f"{base}/xrpc/test.slow", timeout=2)
                refused = False
            except httpx.TransportError:
                refused = True
        assert refused


async def test_streamed_body_over_limit_is_413() -> None:
    server = XRPCServer(slow_app(), "127.0.0.1", 0)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(server.run)

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(20):
                    yield b" " * 100  # 2000 bytes, no Content-Length (chunked)

            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"{binds[0]}/xrpc/test.upload",
                    content=chunks(),
                    headers={"Content-Type": "application/json"},
                    timeout=15,
                )
                small = await client.post(f"{binds[0]}/xrpc/test.upload", json={"a": 1})
            server.request_stop()
    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLarge"
    assert small.status_code == 200
