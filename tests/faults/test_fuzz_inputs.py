"""Hostile input on every routed method: no 5xx, always an XRPC error body.

The route table is collected at test time (``collect_endpoints``) and each
method's parameters and input schema come from its lexicon, so a method added
later is fuzzed without touching this file. Parameters, headers and bodies go
through the ASGI app in-process (the real dispatcher, lexicon decoding,
authenticator and database); raw request lines are in ``test_fuzz_wire.py``.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from quart_trio import QuartTrio

from coves.atproto.keys import PrivateKey
from coves.context import AppContext
from coves.lexicon.registry import LexiconRegistry
from coves.xrpc.routing import Endpoint, collect_endpoints
from tests.faults.fuzzing import (
    HOSTILE_RAW,
    VIEWER,
    assert_xrpc_error_or_ok,
    call,
    random_raw,
)
from tests.support.auth import PREFIX
from tests.support.tokens import compact, service_auth_claims

ENDPOINTS: dict[str, Endpoint] = collect_endpoints()


def lexicon_main(lexicons: LexiconRegistry, nsid: str) -> dict[str, Any]:
    if not lexicons.has(nsid):
        return {}
    main: dict[str, Any] = lexicons.document(nsid).get("defs", {}).get("main", {})
    return main


def param_names(lexicons: LexiconRegistry, nsid: str) -> list[str]:
    props = lexicon_main(lexicons, nsid).get("parameters", {}).get("properties", {})
    return sorted(set(props) | {"cursor", "limit"})


def body_property_names(lexicons: LexiconRegistry, nsid: str) -> list[str]:
    schema = lexicon_main(lexicons, nsid).get("input", {}).get("schema", {})
    return sorted(schema.get("properties", {})) if isinstance(schema, dict) else []


@pytest.fixture(scope="module")
def lexicons() -> LexiconRegistry:
    return LexiconRegistry.load()


async def test_the_fuzzed_context_has_every_service_production_has(fuzz_app: QuartTrio) -> None:
    """A service missing here would answer 501/503 before any input is looked at."""
    ctx: AppContext = fuzz_app.extensions["coves"]
    missing = [f.name for f in dataclasses.fields(ctx) if getattr(ctx, f.name) is None]
    assert missing == ["health", "pds_transport", "pds_services"], missing


def test_every_routed_method_is_fuzzed() -> None:
    # The route table is discovered, not listed here; it must not be empty.
    assert len(ENDPOINTS) >= 10
    assert all(e.kind in ("query", "procedure") for e in ENDPOINTS.values())


@pytest.mark.parametrize("nsid", sorted(ENDPOINTS))
async def test_hostile_parameters(
    nsid: str, fuzz_app: QuartTrio, lexicons: LexiconRegistry
) -> None:
    endpoint = ENDPOINTS[nsid]
    method = endpoint.http_method
    rng = random.Random(nsid)
    names = param_names(lexicons, nsid)
    auth = {"Authorization": f"{PREFIX}{VIEWER}"}
    for name in names:
        for raw in [*HOSTILE_RAW, *(random_raw(rng) for _ in range(6))]:
            for headers in ({}, auth):
                query = f"{quote(name)}={raw}".encode()
                status, _headers, body = await call(
                    fuzz_app, method, f"/xrpc/{nsid}", query, headers
                )
                assert_xrpc_error_or_ok(f"{nsid}?{name}={raw[:60]}", status, body)
        # repeated, and every parameter hostile at once
        query = "&".join(f"{quote(n)}=%00" for n in names * 2).encode()
        status, _headers, body = await call(fuzz_app, method, f"/xrpc/{nsid}", query, auth)
        assert_xrpc_error_or_ok(f"{nsid} all NUL", status, body)
    for query in (b"&&&", b"=", b"=x", b"%", b"a=%zz", b"\xff=\xfe", b"\x00=\x00", b"a" * 9000):
        status, _headers, body = await call(fuzz_app, method, f"/xrpc/{nsid}", query)
        assert_xrpc_error_or_ok(f"{nsid}?{query[:40]!r}", status, body)


def _tokens(nsid: str) -> list[str]:
    key = PrivateKey.generate("k256")
    iss = "did:plc:fuzzissuer00000000000000"
    header = {"typ": "JWT", "alg": "ES256K"}
    weird_claims: list[dict[str, Any]] = [
        {"aud": ["did:web:localhost"]},
        {"aud": {"did": "did:web:localhost"}},
        {"aud": 7},
        {"aud": None},
        {"lxm": ["x"]},
        {"lxm": {"a": 1}},
        {"iss": ["did:plc:x"]},
        {"iss": {"x": 1}},
        {"iss": "did:web:localhost%3A1"},
        {"jti": ["x"]},
        {"jti": {"x": 1}},
        {"exp": "soon"},
        {"exp": 1e309},
        {"exp": -1e20},
        {"iat": [1]},
        {"nbf": {"x": 1}},
        {"iss": "did:plc:é"},
    ]
    tokens = [
        compact(header, service_auth_claims(iss, "did:web:localhost", nsid, **claims), key)
        for claims in weird_claims
    ]
    for bad_header in (
        {"typ": ["JWT"], "alg": "ES256K"},
        {"typ": "JWT", "alg": {"x": 1}},
        {"typ": "JWT", "alg": "ES256K", "kid": ["#atproto"]},
        {"typ": "JWT", "alg": "ES256K", "kid": "#"},
        {"typ": "at+jwt", "alg": "ES256", "kid": {"x": 1}},
        {"typ": "at+jwt", "alg": "ES256", "kid": "k"},
    ):
        tokens.append(compact(bad_header, service_auth_claims(iss, "did:web:localhost", nsid), key))
    oauth_claims = {
        "iss": "https://issuer.fuzz.test",
        "sub": iss,
        "aud": [["x"], {"y": 1}],
        "exp": 9e18,
        "cnf": ["x"],
    }
    tokens.append(compact({"typ": "at+jwt", "alg": "ES256K", "kid": "k1"}, oauth_claims, key))
    return tokens


HOSTILE_HEADERS: list[dict[str, str]] = [
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer a.b.c"},
    {"Authorization": "Bearer ...."},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer " + "a" * 9000},
    {"Authorization": "Bearer \xe9\xe9.\xe9.\xe9"},
    {"Authorization": "DPoP x.y.z", "DPoP": "\xff"},
    {"Authorization": "DPoP eyJ9.eyJ9.", "DPoP": "a,b"},
    {"Authorization": f"{PREFIX}not-a-did"},
    {"Content-Type": "application/json; charset=\x00"},
    {"Content-Type": "text/plain"},
    {"Content-Length": "-1"},
    {"Content-Length": "abc"},
    {"X-Request-ID": "\xff" * 200},
    {"X-Forwarded-For": "not-an-ip, \xff, 999.1.1.1"},
    {"Origin": "\x00"},
    {"atproto-proxy": "did:web:x#\xff"},
    {"Accept-Language": "\xff"},
]


@pytest.mark.parametrize("nsid", sorted(ENDPOINTS))
async def test_hostile_headers_and_tokens(nsid: str, fuzz_app: QuartTrio) -> None:
    method = ENDPOINTS[nsid].http_method
    bearer = [{"Authorization": f"Bearer {token}"} for token in _tokens(nsid)]
    dpop = [{"Authorization": f"DPoP {token}", "DPoP": token} for token in _tokens(nsid)[-3:]]
    for headers in [*HOSTILE_HEADERS, *bearer, *dpop]:
        status, _headers, body = await call(fuzz_app, method, f"/xrpc/{nsid}", b"", headers, b"{}")
        assert_xrpc_error_or_ok(f"{nsid} {list(headers)} {headers}", status, body)
    for other in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "BREW"):
        status, _headers, body = await call(fuzz_app, other, f"/xrpc/{nsid}")
        if other != "HEAD" and status != 204:
            assert_xrpc_error_or_ok(f"{other} {nsid}", status, body)
        else:
            assert status < 500


def hostile_bodies(names: list[str], rng: random.Random) -> Iterator[bytes]:
    yield from (
        b"",
        b"null",
        b"[]",
        b"1",
        b'"x"',
        b"{",
        b"\xff\xfe",
        b"{}",
        b'{"a":' * 500 + b"1" + b"}" * 500,
        b'{"\\u0000": 1}',
    )
    values: list[Any] = [
        None,
        "",
        "\x00",
        "a\x00b",
        "\U0001f4a9",
        "x" * 100_000,
        -1,
        2**70,
        1.5,
        True,
        [],
        {},
        ["\x00"],
        {"$type": "\x00"},
        {"uri": "at://\x00", "cid": "\x00"},
        "at://did:plc:x/a/b",
        "did:plc:\x00",
    ]
    # The standard library's encoder: orjson refuses integers beyond 64 bits.
    for name in names:
        for value in values:
            yield json.dumps({name: value}).encode()
    for _ in range(20):
        yield json.dumps({name: rng.choice(values) for name in names}).encode()


@pytest.mark.parametrize("nsid", sorted(ENDPOINTS))
async def test_hostile_bodies(nsid: str, fuzz_app: QuartTrio, lexicons: LexiconRegistry) -> None:
    """Procedures get every body; queries get them too (with their own method)."""
    rng = random.Random(nsid)
    method = ENDPOINTS[nsid].http_method
    headers = {"Authorization": f"{PREFIX}{VIEWER}", "Content-Type": "application/json"}
    for body in hostile_bodies(body_property_names(lexicons, nsid), rng):
        status, _headers, payload = await call(
            fuzz_app, method, f"/xrpc/{nsid}", b"", headers, body
        )
        assert_xrpc_error_or_ok(f"{nsid} body {body[:80]!r}", status, payload)


async def test_operational_routes_answer_hostile_requests_in_xrpc_shape(
    fuzz_app: QuartTrio,
) -> None:
    for method, path in (
        ("POST", "/xrpc/_health"),
        ("DELETE", "/metrics"),
        ("PUT", "/.well-known/did.json"),
        ("GET", "/nope"),
        ("GET", "/xrpc/"),
        ("GET", "/xrpc/a/b"),
        ("GET", "/\x00"),
        ("GET", "/%00"),
        ("BREW", "/xrpc/_health"),
    ):
        status, _headers, body = await call(fuzz_app, method, path)
        assert_xrpc_error_or_ok(f"{method} {path!r}", status, body)
        assert status >= 400
