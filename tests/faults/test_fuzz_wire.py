"""Hostile raw requests through the real server (Hypercorn + the app), on every route.

``test_fuzz_inputs.py`` fuzzes parameters, headers and bodies in-process through
ASGI; this file sends bytes on a socket, so what Hypercorn's parser and the
ASGI translation make of them is covered too: absolute-form and odd request
targets, raw non-UTF-8 bytes, odd methods, chunked and unknown transfer
codings, ``Expect``, upgrades, oversized and odd headers. Every routed XRPC
method gets them (the table is discovered, as in ``test_fuzz_inputs.py``), and
so do the routes outside XRPC: sign-in (``/oauth/...``, ``/api/me``), the OAuth
client documents, ``/.well-known/*``, ``/metrics`` and ``_health``, which also
get their parameters, cookies and bodies fuzzed in-process.

Whatever comes back is below 500 and, from 400 up, ``{"error", "message"}``;
the one 5xx allowed is 501 for a transfer coding HTTP/1.1 does not define
(RFC 9112 §6.1 asks for exactly that).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit

import orjson
import pytest
import trio
from quart_trio import QuartTrio

from coves.xrpc.routing import Endpoint, collect_endpoints
from nurseries.xrpc_server import XRPCServer
from tests.faults.fuzzing import (
    HOSTILE_RAW,
    VIEWER,
    call,
    parse,
    random_raw,
)
from tests.support.auth import PREFIX

ENDPOINTS: dict[str, Endpoint] = collect_endpoints()
HOSTILE_HOST = "evil.example"


@pytest.fixture
async def port(fuzz_app: QuartTrio) -> AsyncIterator[int]:
    """The production app (offline, real database) behind the real server."""
    server = XRPCServer(fuzz_app, "127.0.0.1", 0, grace=1.0)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(server.run)
        yield int(binds[0].rsplit(":", 1)[1])
        server.request_stop()


class Answer:
    """One HTTP/1.1 response as it came off the socket (interim 1xx ones skipped)."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


async def exchange(
    port: int, raw: bytes, *, half_close: bool = False, head_only: bool = False
) -> Answer | None:
    """Send ``raw`` on a fresh connection; read one final response (None: the server
    closed without answering). Reads by Content-Length, so keep-alive costs no wait;
    the answer to a HEAD (``head_only``) has none of the body its Content-Length announces."""
    with trio.fail_after(20):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            await stream.send_all(raw)
            if half_close:
                await stream.send_eof()
            data = b""
            while True:
                sep = b"\r\n\r\n" in data
                if sep:
                    status, headers, rest = parse(data)
                    if status == 101:  # switched (h2c): what follows is not HTTP/1.1
                        return Answer(status, headers, b"")
                    if 100 <= status < 200:
                        data = rest  # 100 Continue: the final answer follows
                        continue
                    if head_only:
                        return Answer(status, headers, b"")
                    length = int(headers.get("content-length", "-1"))
                    if 0 <= length <= len(rest):
                        return Answer(status, headers, rest[:length])
                chunk = await stream.receive_some(65536)
                if not chunk:
                    if not data:
                        return None
                    assert sep, f"half a response: {data[:300]!r}"
                    return Answer(status, headers, rest)
                data += chunk
        finally:
            await stream.aclose()


def check(what: str, answer: Answer | None, *, head: bool = False) -> None:
    assert answer is not None, f"{what}: closed without an answer"
    status = answer.status
    body = _error_body(answer) if status >= 400 and not head else None
    unknown_coding = status == 501 and body is not None and body["error"] == "NotImplemented"
    assert status < 500 or unknown_coding, (what, answer)
    if status >= 400 and not head:
        assert answer.headers.get("content-type", "").startswith("application/json"), (what, answer)
        assert body is not None, (what, answer)
        assert isinstance(body.get("error"), str) and body["error"], (what, answer)
        assert isinstance(body.get("message"), str), (what, answer)
    if 300 <= status < 400:
        location = answer.headers.get("location", "")
        assert HOSTILE_HOST not in urlsplit(location).netloc, (what, answer)
        assert not location.startswith("//"), (what, answer)


def _error_body(answer: Answer) -> dict[str, object] | None:
    try:
        decoded = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: coves.test", *headers]
    if body and not any(
        h.lower().startswith(("content-length", "transfer-encoding")) for h in headers
    ):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def hostile_requests(method: str, path: str) -> Iterator[tuple[str, bytes]]:
    """Requests that reach the application (Hypercorn accepts them), for one route."""
    auth = f"Authorization: {PREFIX}{VIEWER}"
    json = "Content-Type: application/json"
    yield "plain", request(method, path)
    yield "absolute-form", request(method, f"http://coves.test{path}?limit=1")
    yield "absolute-form https with port", request(method, f"https://coves.test:443{path}")
    yield "absolute-form, other host", request(method, f"http://{HOSTILE_HOST}{path}")
    yield "absolute-form with userinfo", request(method, f"http://u:p@{HOSTILE_HOST}{path}")
    yield "raw non-UTF-8 query", request(method, path + "?cursor=\xff\xfe&limit=\xc3")
    yield "raw non-UTF-8 path", request(method, path + "\xff\xc3")
    yield "encoded NUL in path", request(method, path + "%00")
    yield "encoded slash", request(method, path.replace("/", "%2F", 2))
    yield "dot segments", request(method, "/xrpc/.." + path)
    yield "fragment", request(method, path + "?a=1#frag")
    yield "empty query", request(method, path + "?")
    yield "query of separators", request(method, path + "?&&=&=%&%zz=%")
    yield "HTTP/1.0 without Host", f"{method} {path} HTTP/1.0\r\n\r\n".encode()
    yield "lower-case method", request(method.lower(), path)
    yield "unknown method", request("BREW", path)
    yield "long method", request("X" * 300, path)
    yield "many headers", request(method, path, *(f"X-H{i}: {i}" for i in range(200)))
    yield "a 12 KB header", request(method, path, "X-Big: " + "b" * 12_000)
    yield "latin-1 header value", request(method, path, auth, "X-Name: \xe9\xff")
    yield "two Host headers", request(method, path, "Host: other.test")
    yield "empty Host", f"{method} {path} HTTP/1.1\r\nHost:\r\n\r\n".encode()
    yield (
        "odd Host",
        request(method, path, f"X-Forwarded-Host: {HOSTILE_HOST}").replace(
            b"Host: coves.test", b"Host: [::1"
        ),
    )
    yield (
        "hostile cookies",
        request(
            method, path, "Cookie: coves_session=\xff; coves_oauth_binding=%00;;=;" + "a" * 3000
        ),
    )
    yield (
        "chunked JSON",
        request(method, path, auth, json, "Transfer-Encoding: chunked", body=chunked(b"{", b"}")),
    )
    yield (
        "chunked, bad size",
        request(method, path, "Transfer-Encoding: chunked", body=b"zz\r\n{}\r\n0\r\n\r\n"),
    )
    yield (
        "chunked with trailers",
        request(method, path, "Transfer-Encoding: chunked", body=b"2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n"),
    )
    yield (
        "chunked and Content-Length",
        request(
            method, path, "Transfer-Encoding: chunked", "Content-Length: 5", body=chunked(b"{}")
        ),
    )
    yield (
        "gzip, chunked",
        request(method, path, "Transfer-Encoding: gzip, chunked", body=chunked(b"{}")),
    )
    yield "identity coding", request(method, path, "Transfer-Encoding: identity", body=b"{}")
    yield (
        "Expect: 100-continue",
        request(method, path, auth, json, "Expect: 100-continue", body=b"{}"),
    )
    yield "Expect: other", request(method, path, "Expect: teapot", body=b"{}")
    yield (
        "websocket upgrade",
        request(
            "GET",
            path,
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ),
    )
    yield (
        "h2c upgrade",
        request(
            "GET",
            path,
            "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAAQAAP__",
        ),
    )
    yield "gzip content-encoding", request(method, path, json, "Content-Encoding: gzip", body=b"{}")
    yield (
        "multipart body",
        request(
            method, path, "Content-Type: multipart/form-data; boundary=x", body=b"--x\r\n\xff--"
        ),
    )


@pytest.mark.parametrize("nsid", sorted(ENDPOINTS))
async def test_raw_requests_to_every_routed_method(port: int, nsid: str) -> None:
    method = ENDPOINTS[nsid].http_method
    for name, raw in hostile_requests(method, f"/xrpc/{nsid}"):
        check(f"{nsid}: {name}", await exchange(port, raw))


async def test_a_body_cut_short_gets_an_answer_or_a_close(port: int) -> None:
    """The client announces more than it sends, then half-closes: no 5xx, no hang.

    Hypercorn takes the end of the stream for a client that went away: a response
    the application had started (a 401 that needs no body) may be cut by the close,
    so only a complete answer is checked whole; a cut one must still not be a 5xx."""
    for nsid in sorted(n for n, e in ENDPOINTS.items() if e.kind == "procedure")[:5]:
        raw = request("POST", f"/xrpc/{nsid}", "Content-Length: 100", body=b'{"a":')
        answer = await exchange(port, raw, half_close=True)
        if answer is None:
            continue
        if len(answer.body) == int(answer.headers.get("content-length", "-1")):
            check(f"{nsid}: truncated body", answer)
        else:
            assert answer.status < 500, (nsid, answer)


async def test_an_h2c_upgrade_is_served_as_http11(port: int) -> None:
    """No 101: Hypercorn's h2c switch once left a connection that shutdown waited on."""
    for path in ("/xrpc/_health", "/oauth-client-metadata.json"):
        raw = request(
            "GET",
            path,
            "Connection: Upgrade, HTTP2-Settings",
            "Upgrade: h2c",
            "HTTP2-Settings: AAMAAABkAAQAAP__",
        )
        answer = await exchange(port, raw)
        assert answer is not None and answer.status == 200, (path, answer)
        assert "upgrade" not in answer.headers, answer


PARSER_CASES: list[tuple[str, bytes, int]] = [
    # h11 bounds what it buffers unparsed (16 KB); a header block that arrives whole
    # in one read (Hypercorn reads 64 KB) is parsed, so the refusal is tested above that.
    ("a 100 KB header", request("GET", "/xrpc/_health", "X-Big: " + "b" * 100_000), 431),
    # RFC 9112 §5.2 lets a server unfold obs-fold instead of refusing it; h11 unfolds.
    ("obs-fold", b"GET /xrpc/_health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 200),
    ("header without a colon", b"GET /xrpc/_health HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400),
    ("space before the colon", b"GET /xrpc/_health HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    # A higher minor version is served as 1.1 (RFC 9112 §2.3); h11 does the same for
    # any version it can parse, and answers in HTTP/1.1, which such a client must read.
    ("HTTP/1.2", b"GET /xrpc/_health HTTP/1.2\r\nHost: x\r\n\r\n", 200),
    ("HTTP/9.9", b"GET /xrpc/_health HTTP/9.9\r\nHost: x\r\n\r\n", 200),
    ("no version", b"GET /xrpc/_health\r\nHost: x\r\n\r\n", 400),
    ("NUL in the request line", b"GET /xrpc/_he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space in the target", b"GET /xrpc/_health x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("empty request line", b"\r\n\r\n\r\nGET\r\n\r\n", 400),
    ("binary garbage", bytes(range(256)) + b"\r\n\r\n", 400),
    ("unknown transfer coding", request("POST", "/xrpc/a.b", "Transfer-Encoding: br"), 501),
    ("negative Content-Length", request("POST", "/xrpc/a.b", "Content-Length: -1"), 400),
    ("Content-Length not a number", request("POST", "/xrpc/a.b", "Content-Length: 1x"), 400),
]


@pytest.mark.parametrize(
    ("name", "raw", "status"), PARSER_CASES, ids=[case[0] for case in PARSER_CASES]
)
async def test_what_the_parser_refuses_is_xrpc_shaped_and_the_rest_served(
    port: int, name: str, raw: bytes, status: int
) -> None:
    answer = await exchange(port, raw)
    check(name, answer)
    assert answer is not None and answer.status == status, answer


# -- the routes outside XRPC --------------------------------------------------------

# Path -> (its method, the parameters its handler reads).
OTHER_ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/oauth/login": ("GET", ("handle", "redirect_uri", "redirect", "state")),
    "/oauth/mobile/login": ("GET", ("handle", "redirect_uri")),
    "/oauth/callback": ("GET", ("code", "state", "iss", "error", "error_description")),
    "/api/me": ("GET", ()),
    "/oauth/refresh": ("POST", ()),
    "/oauth/logout": ("POST", ()),
    "/oauth-client-metadata.json": ("GET", ()),
    "/oauth-client-keys.json": ("GET", ()),
    "/.well-known/did.json": ("GET", ()),
    "/.well-known/atproto-did": ("GET", ()),
    "/.well-known/oauth-protected-resource": ("GET", ()),
    "/.well-known/": ("GET", ()),
    "/metrics": ("GET", ()),
    "/xrpc/_health": ("GET", ()),
}
ROUTE_VALUES = [
    *HOSTILE_RAW,
    "alice.test",
    "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
    quote(f"https://{HOSTILE_HOST}/x", safe=""),
    quote(f"//{HOSTILE_HOST}/x", safe=""),
    "javascript:alert(1)",
    "social.coves:/callback",
    "https%3A%2F%2Fcoves.test%2F%0D%0ALocation:%20x",
]
SESSION_HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer cvs1.AAAA"},
    {"Authorization": "Bearer cvs1." + "A" * 2000},
    {"Authorization": "Bearer cvs1.\xff\xfe"},
    {"Authorization": "DPoP cvs1.x", "DPoP": "a.b.c"},
    {"Authorization": "Bearer"},
    {"Cookie": "coves_session=cvs1.AAAA"},
    {"Cookie": "coves_session=cvs1.AAAA", "Origin": f"https://{HOSTILE_HOST}"},
    {"Cookie": "coves_session=\xff%00; coves_oauth_binding=x; coves_oauth_binding=y"},
    {"Cookie": "coves_oauth_binding=" + "b" * 5000},
    {"Origin": "null", "Referer": "\x00"},
]
REFRESH_BODIES: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b"{",
    b"\xff",
    b'{"did": 1, "session_id": [], "sealed_token": {}}',
    b'{"did": "did:plc:x", "session_id": "s", "sealed_token": "cvs1.AAAA"}',
    b'{"did": "did:plc:x", "session_id": "s", "sealed_token": "' + b"A" * 5000 + b'"}',
    b'{"did": "\\u0000", "session_id": "\\u0000", "sealed_token": "cvs1.\\u0000"}',
    b'{"a":' * 300 + b"1" + b"}" * 300,
]


@pytest.mark.parametrize("path", sorted(OTHER_ROUTES))
async def test_routes_outside_xrpc_in_process(fuzz_app: QuartTrio, path: str) -> None:
    """Parameters, cookies, credentials, bodies and methods on each route."""
    route_method, params = OTHER_ROUTES[path]
    rng = random.Random(path)

    async def answer(
        method: str, query: bytes, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Answer:
        return Answer(*await call(fuzz_app, method, path, query, headers, body))

    for name in params:
        for raw in [*ROUTE_VALUES, *(random_raw(rng) for _ in range(6))]:
            query = f"{name}={raw}&handle=alice.test".encode()
            check(f"{path}?{name}={raw[:60]}", await answer(route_method, query))
    everything = "&".join(f"{n}=%00&{n}=x" for n in params).encode()
    for headers in SESSION_HEADERS:
        for body in REFRESH_BODIES if route_method == "POST" else [b""]:
            got = await answer(route_method, everything, headers, body)
            check(f"{path} {headers} {body[:40]!r}", got)
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"):
        check(f"{method} {path}", await answer(method, b"x=%ff", {}, b"{}"), head=method == "HEAD")


@pytest.mark.parametrize("path", sorted(OTHER_ROUTES))
async def test_raw_requests_to_the_routes_outside_xrpc(port: int, path: str) -> None:
    method = OTHER_ROUTES[path][0]
    for name, raw in hostile_requests(method, path):
        check(f"{path}: {name}", await exchange(port, raw))
    answer = await exchange(port, request("HEAD", path), head_only=True)
    check(f"HEAD {path}", answer, head=True)


async def test_every_route_outside_xrpc_is_fuzzed(fuzz_app: QuartTrio) -> None:
    """A route added to the app later must be added to OTHER_ROUTES."""
    served = {rule.rule for rule in fuzz_app.url_map.iter_rules()} - {"/xrpc/<nsid>"}
    served = {rule for rule in served if not rule.startswith("/static")}
    assert served <= set(OTHER_ROUTES), served - set(OTHER_ROUTES)
    assert {"/oauth/login", "/api/me", "/metrics", "/xrpc/_health"} <= served


def test_the_responses_are_parsed_as_sent() -> None:
    """The reader the checks rely on: a keep-alive answer is cut by its length."""
    body = orjson.dumps({"error": "X", "message": "y"})
    answer = Answer(400, {"content-type": "application/json"}, body)
    check("sanity", answer)
    with pytest.raises(AssertionError):
        check("a 500", Answer(500, {"content-type": "application/json"}, body))
    with pytest.raises(AssertionError):
        check("an empty 400", Answer(400, {"content-type": "text/html"}, b""))
    with pytest.raises(AssertionError):
        check("open redirect", Answer(302, {"location": f"https://{HOSTILE_HOST}/"}, b""))
