"""The real (non-mock) transport: the address check is enforced at connect time."""

from __future__ import annotations

import pytest
import trio

from coves.net import BlockedAddress, SafeFetcher


async def serve_once(listeners: list[trio.SocketListener], body: bytes) -> None:
    stream = await listeners[0].accept()
    async with stream:
        await stream.receive_some(65536)
        head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
        )
        await stream.send_all(head + body)


async def test_loopback_server_reachable_only_when_private_fetch_is_allowed() -> None:
    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def resolve(host: str, p: int) -> list[str]:
            return ["127.0.0.1"]

        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_once, listeners, b'{"id": "did:web:x"}')
            allowed = SafeFetcher(resolve=resolve, allow_private=True)
            assert await allowed.get_json(f"http://pds.test:{port}/x") == {"id": "did:web:x"}
            await allowed.aclose()

        refused = SafeFetcher(resolve=resolve)
        with pytest.raises(BlockedAddress):
            await refused.get(f"http://pds.test:{port}/x")
        await refused.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_rebinding_between_check_and_connect_is_caught() -> None:
    """First lookup answers public, the connect-time lookup answers loopback."""
    answers = [["93.184.216.34"], ["127.0.0.1"]]

    async def resolve(host: str, port: int) -> list[str]:
        return answers.pop(0) if answers else ["127.0.0.1"]

    fetcher = SafeFetcher(resolve=resolve)
    with trio.fail_after(10), pytest.raises(BlockedAddress):
        await fetcher.get("http://rebind.test:9/x")
    assert answers == []  # both lookups happened: the pre-check and the connect-time one
    await fetcher.aclose()
