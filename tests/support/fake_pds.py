"""A fake PDS for fault injection only: an ``httpx.MockTransport`` speaking XRPC.

Everything that can run against the reference PDS does (``tests/support/pds.py``);
this exists for what the real one cannot be made to do on demand: answer 5xx,
rate-limit, time out, hang, send garbage, drop connections. Answers use the
XRPC wire format (``{"error", "message"}`` JSON bodies, PDS headers).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import trio

Reply = httpx.Response | BaseException
Script = Callable[[httpx.Request], Awaitable[Reply] | Reply]


def xrpc_error(status: int, error: str, message: str = "", **headers: str) -> httpx.Response:
    body = {"error": error, "message": message or error}
    return httpx.Response(
        status, content=orjson.dumps(body), headers={"content-type": "application/json", **headers}
    )


def ok(body: Any) -> httpx.Response:
    return httpx.Response(
        200, content=orjson.dumps(body), headers={"content-type": "application/json"}
    )


@dataclass
class FakePds:
    """Answers each request from a per-NSID queue of replies (the last one repeats).

    A reply is an ``httpx.Response``, an exception to raise (``httpx.ConnectError``,
    ``httpx.ReadTimeout``...), or a callable producing either. ``requests`` records
    what was sent, in order.
    """

    replies: dict[str, list[Reply | Script]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, nsid: str, *replies: Reply | Script) -> FakePds:
        self.replies[nsid] = list(replies)
        return self

    def calls(self, nsid: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == f"/xrpc/{nsid}"]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        nsid = request.url.path.removeprefix("/xrpc/")
        queue = self.replies.get(nsid)
        if not queue:
            return xrpc_error(501, "MethodNotImplemented", f"fake PDS has no reply for {nsid}")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(reply) and not isinstance(reply, httpx.Response):
            reply = reply(request)
            if isinstance(reply, Awaitable):
                reply = await reply
        if isinstance(reply, BaseException):
            raise reply
        return reply


async def hang(request: httpx.Request) -> httpx.Response:
    """A reply that never comes (the client's deadline must end the call)."""
    await trio.sleep_forever()
    raise AssertionError("unreachable")
