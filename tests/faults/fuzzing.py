"""What the fuzz tests share: the production context offline, hostile values, the checks.

``fuzz_app`` (tests/faults/conftest.py) is the app every deployed Coves runs,
with every service built by ``build_context`` so inputs reach the handlers' own
checks, but offline: every outbound fetch gets a 404.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import trio
from quart_trio import QuartTrio

from coves.auth.base import AuthInput, Viewer
from coves.config import Settings
from coves.context import build_context
from coves.db import Database
from coves.identity.factory import build_fetcher
from coves.net import SafeFetcher
from coves.xrpc.app import create_app
from coves.xrpc.ratelimit import RateLimiter, default_limit_classes
from tests.support.auth import PREFIX, FakeAuthenticator

VIEWER = "did:plc:fuzzviewer0000000000000000"

# Raw (already percent-encoded) query values that broke parsers, casts or SQL before.
HOSTILE_RAW = [
    "",
    "%00",
    "a%00b",
    "a.%C3%A9",
    "%C3%A9.%C3%A9",
    "%FF%FE",
    "%C3",
    "%ED%A0%80",  # a UTF-16 surrogate encoded as UTF-8
    "%F0%9F%92%A9",
    "-1",
    "0",
    "1e309",
    "NaN",
    "99999999999999999999999999",
    "-99999999999999999999999999",
    "true",
    "null",
    "%5B%5D",
    "%7B%7D",
    "at://",
    "at://did:plc:x/social.coves.community.post/",
    "at%3A%2F%2Fdid%3Aplc%3Aabc%2Fa%2Fb%00",
    "did:",
    "did:plc:",
    "did:web:localhost%253A1",
    "handle.invalid",
    "..",
    "a." + "A" * 3000,
    "x" * 10_000,
    "%25",
    "%",
    "%%",
    "+",
    "%20",
    "%0A%0D",
    "%5C",
    "'%3B--",
]


def random_raw(rng: random.Random) -> str:
    """Random bytes, percent-encoded: arbitrary (often invalid) UTF-8."""
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24)))
    return quote(data, safe="")


class FuzzAuthenticator:
    """The production authenticator, plus ``Bearer test:<did>`` for a signed-in viewer."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self._fake = FakeAuthenticator()

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization", "")
        if header.startswith(PREFIX):
            return await self._fake.authenticate(request)
        viewer: Viewer | None = await self._real.authenticate(request)
        return viewer


def build_fuzz_app(settings: Settings, db: Database) -> QuartTrio:
    """The production context (every service a deployed Coves has, so the inputs reach
    the handlers' own checks), offline: every outbound fetch gets a 404."""
    settings = settings.replace(
        oauth_issuers=("https://issuer.fuzz.test",), plc_url="https://plc.fuzz.test"
    )
    offline = httpx.MockTransport(lambda request: httpx.Response(404))
    ctx = build_context(
        settings,
        db,
        fetcher=build_fetcher(settings, transport=offline, resolve=_public_resolve),
        outbound=SafeFetcher(transport=offline, resolve=_public_resolve),
    )
    ctx = dataclasses.replace(ctx, authenticator=FuzzAuthenticator(ctx.authenticator))
    # Every limit class, unbounded: a 429 would end the fuzzing of a method early.
    unbounded = [dataclasses.replace(c, limit=10**9) for c in default_limit_classes(settings)]
    return create_app(ctx, limiter=RateLimiter(unbounded))


async def _public_resolve(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]


def assert_xrpc_error_or_ok(what: str, status: int, body: bytes) -> None:
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        decoded = orjson.loads(body)
        assert isinstance(decoded, dict), what
        assert isinstance(decoded.get("error"), str) and decoded["error"], (what, decoded)
        assert isinstance(decoded.get("message"), str), (what, decoded)


async def call(
    app: QuartTrio,
    method: str,
    path: str,
    query: bytes = b"",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    """One request through the ASGI app as a server would deliver it (raw query bytes):
    the status, the response headers (lower-case names; the last of repeats), the body."""
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await trio.sleep_forever()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_headers = [(b"host", b"coves.test")]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    if body:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1", "replace"),
        "query_string": query,
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8081),
        "extensions": {},
    }
    with trio.fail_after(20):
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {
        bytes(name).decode("latin-1").lower(): bytes(value).decode("latin-1")
        for name, value in start.get("headers", [])
    }
    return start["status"], answer_headers, payload


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """An HTTP/1.1 response as read off a socket: status, headers (lower-case), the rest."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest
