"""The XRPC dispatcher's HTTP behaviour: errors, request ids, CORS, auth, metrics."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest
import trio
from quart_trio import QuartTrio

from coves.auth.base import AuthFailure, AuthInput, AuthPolicy, Viewer
from coves.context import AppContext
from coves.db import DatabaseUnavailable
from coves.errors import XRPCError
from coves.xrpc.app import create_app
from coves.xrpc.routing import Endpoint, Router, XRPCRequest
from tests.foundation.conftest import offline_context

PEER = {"client": ("203.0.113.9", 50000)}


def build_router() -> Router:
    router = Router()

    @router.query("test.echo")
    async def echo(req: XRPCRequest) -> Any:
        return {"params": req.params}

    @router.procedure("test.create", auth=AuthPolicy.NONE)
    async def create(req: XRPCRequest) -> Any:
        return {"got": req.body}

    @router.query("test.explode")
    async def explode(req: XRPCRequest) -> Any:
        raise RuntimeError("secret internal detail: password=hunter2")

    @router.query("test.dbdown")
    async def dbdown(req: XRPCRequest) -> Any:
        raise DatabaseUnavailable("connection refused to 10.0.0.5")

    @router.query("test.notfound")
    async def notfound(req: XRPCRequest) -> Any:
        raise XRPCError(400, "PostNotFound", "no such post")

    @router.query("test.private", auth=AuthPolicy.REQUIRED)
    async def private(req: XRPCRequest) -> Any:
        return {"did": req.require_viewer().did}

    @router.query("test.maybe", auth=AuthPolicy.OPTIONAL)
    async def maybe(req: XRPCRequest) -> Any:
        return {"did": req.viewer.did if req.viewer else None}

    @router.query("test.comments", limits=("comments",))
    async def comments(req: XRPCRequest) -> Any:
        return {}

    return router


def make_app(ctx: AppContext | None = None) -> tuple[QuartTrio, AppContext]:
    ctx = ctx or offline_context()
    endpoints: dict[str, Endpoint] = build_router().endpoints
    return create_app(ctx, endpoints), ctx


async def test_unknown_nsid_is_501_with_xrpc_body() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/xrpc/com.example.nothing", scope_base=PEER)
    assert response.status_code == 501
    body = await response.get_json()
    assert body["error"] == "MethodNotImplemented"
    assert "com.example.nothing" in body["message"]
    assert response.headers["Content-Type"].startswith("application/json")


async def test_query_succeeds_with_params_and_rate_limit_headers() -> None:
    app, _ = make_app()
    response = await app.test_client().get(
        "/xrpc/test.echo", query_string={"a": "1"}, scope_base=PEER
    )
    assert response.status_code == 200
    assert (await response.get_json()) == {"params": {"a": "1"}}
    assert response.headers["RateLimit-Limit"] == "100"
    assert response.headers["RateLimit-Remaining"] == "99"
    assert response.headers["RateLimit-Policy"] == "100;w=60"
    assert int(response.headers["RateLimit-Reset"]) > 0


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("POST", "/xrpc/test.echo", "GET"), ("GET", "/xrpc/test.create", "POST")],
)
async def test_wrong_method_is_invalid_request_with_allow(
    method: str, path: str, allow: str
) -> None:
    app, _ = make_app()
    response = await app.test_client().open(path, method=method, scope_base=PEER)
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "InvalidRequest"
    assert response.headers["Allow"] == allow


async def test_procedure_json_body_round_trip() -> None:
    app, _ = make_app()
    response = await app.test_client().post(
        "/xrpc/test.create", json={"x": [1, 2]}, scope_base=PEER
    )
    assert response.status_code == 200
    assert (await response.get_json()) == {"got": {"x": [1, 2]}}


async def test_body_over_limit_is_413() -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(max_request_body_bytes=100))
    app, _ = make_app(ctx)
    response = await app.test_client().post(
        "/xrpc/test.create",
        data=b"{" + b" " * 200 + b"}",
        headers={"Content-Type": "application/json"},
        scope_base=PEER,
    )
    assert response.status_code == 413
    assert (await response.get_json())["error"] == "PayloadTooLarge"


async def test_wrong_content_type_is_415() -> None:
    app, _ = make_app()
    response = await app.test_client().post(
        "/xrpc/test.create",
        data=b"a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        scope_base=PEER,
    )
    assert response.status_code == 415
    assert (await response.get_json())["error"] == "UnsupportedMediaType"


async def test_invalid_json_is_400() -> None:
    app, _ = make_app()
    response = await app.test_client().post(
        "/xrpc/test.create",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        scope_base=PEER,
    )
    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"] == "InvalidRequest" and "JSON" in body["message"]


async def test_handler_xrpc_error_passes_through() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/xrpc/test.notfound", scope_base=PEER)
    assert response.status_code == 400
    assert (await response.get_json()) == {"error": "PostNotFound", "message": "no such post"}


async def test_unhandled_error_is_opaque_500_logged_with_request_id(
    log_output: io.StringIO,
) -> None:
    app, _ = make_app()
    response = await app.test_client().get(
        "/xrpc/test.explode", headers={"X-Request-ID": "req-explode-1"}, scope_base=PEER
    )
    assert response.status_code == 500
    body = await response.get_json()
    assert body == {"error": "InternalServerError", "message": "Internal Server Error"}
    assert response.headers["X-Request-ID"] == "req-explode-1"
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line]
    errors = [line for line in lines if line.get("event") == "unhandled error in XRPC handler"]
    assert errors, lines
    assert errors[0]["request_id"] == "req-explode-1"
    assert "secret internal detail" in errors[0]["exception"]
    assert "hunter2" not in log_output.getvalue()


async def test_database_outage_is_503() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/xrpc/test.dbdown", scope_base=PEER)
    assert response.status_code == 503
    body = await response.get_json()
    assert body["error"] == "NotEnoughResources"
    assert "10.0.0.5" not in body["message"]


async def test_request_id_honoured_or_replaced() -> None:
    app, _ = make_app()
    client = app.test_client()
    good = await client.get("/xrpc/test.echo", headers={"X-Request-ID": "abc-123"}, scope_base=PEER)
    assert good.headers["X-Request-ID"] == "abc-123"
    bad = await client.get(
        "/xrpc/test.echo", headers={"X-Request-ID": "bad id\twith junk"}, scope_base=PEER
    )
    assert bad.headers["X-Request-ID"] != "bad id\twith junk"
    assert len(bad.headers["X-Request-ID"]) == 32
    missing = await client.get("/xrpc/test.echo", scope_base=PEER)
    assert len(missing.headers["X-Request-ID"]) == 32
    assert missing.headers["X-Request-ID"] != bad.headers["X-Request-ID"]


async def test_cors_allowed_and_denied_origins() -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(cors_origins=("https://app.coves.social",)))
    app, _ = make_app(ctx)
    client = app.test_client()
    preflight = await client.open(
        "/xrpc/test.echo",
        method="OPTIONS",
        headers={
            "Origin": "https://app.coves.social",
            "Access-Control-Request-Method": "GET",
        },
        scope_base=PEER,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.coves.social"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "DPoP" in preflight.headers["Access-Control-Allow-Headers"]

    simple = await client.get(
        "/xrpc/test.echo", headers={"Origin": "https://app.coves.social"}, scope_base=PEER
    )
    assert simple.headers["Access-Control-Allow-Origin"] == "https://app.coves.social"
    assert "RateLimit-Remaining" in simple.headers["Access-Control-Expose-Headers"]
    assert simple.headers["Vary"] == "Origin"

    denied = await client.open(
        "/xrpc/test.echo",
        method="OPTIONS",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        scope_base=PEER,
    )
    assert "Access-Control-Allow-Origin" not in denied.headers
    denied_simple = await client.get(
        "/xrpc/test.echo", headers={"Origin": "https://evil.example"}, scope_base=PEER
    )
    assert "Access-Control-Allow-Origin" not in denied_simple.headers


async def test_cors_wildcard() -> None:
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(cors_origins=("*",)))
    app, _ = make_app(ctx)
    response = await app.test_client().get(
        "/xrpc/test.echo", headers={"Origin": "https://any.example"}, scope_base=PEER
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_cors_on_routes_outside_xrpc_dispatch() -> None:
    # _health is served by Quart, not the XRPC dispatcher: same CORS answer.
    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(cors_origins=("https://app.coves.social",)))
    app, _ = make_app(ctx)
    client = app.test_client()
    allowed = await client.get(
        "/xrpc/_health", headers={"Origin": "https://app.coves.social"}, scope_base=PEER
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.coves.social"
    assert allowed.headers["Vary"] == "Origin"
    assert "RateLimit-Remaining" in allowed.headers["Access-Control-Expose-Headers"]
    denied = await client.get(
        "/xrpc/_health", headers={"Origin": "https://evil.example"}, scope_base=PEER
    )
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert "Access-Control-Expose-Headers" not in denied.headers


class FakeAuthenticator:
    def __init__(self) -> None:
        self.seen: list[AuthInput] = []

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        self.seen.append(request)
        header = request.headers.get("authorization")
        if header is None:
            return None
        if header == "Bearer good":
            return Viewer(did="did:plc:alice", method="service_auth")
        raise AuthFailure(
            "bad_signature",
            "token signature is invalid",
            www_authenticate='Bearer error="invalid_token"',
        )


async def test_auth_required_optional_and_failures(log_output: io.StringIO) -> None:
    ctx = offline_context()
    auth = FakeAuthenticator()
    ctx = replace(ctx, authenticator=auth)
    app, _ = make_app(ctx)
    client = app.test_client()

    missing = await client.get("/xrpc/test.private", scope_base=PEER)
    assert missing.status_code == 401
    assert (await missing.get_json())["error"] == "AuthenticationRequired"
    assert missing.headers["WWW-Authenticate"]

    ok = await client.get(
        "/xrpc/test.private", headers={"Authorization": "Bearer good"}, scope_base=PEER
    )
    assert (await ok.get_json()) == {"did": "did:plc:alice"}
    assert auth.seen[-1].nsid == "test.private"
    assert auth.seen[-1].url.endswith("/xrpc/test.private")

    bad = await client.get(
        "/xrpc/test.private",
        headers={"Authorization": "Bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"},
        scope_base=PEER,
    )
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    anonymous = await client.get("/xrpc/test.maybe", scope_base=PEER)
    assert (await anonymous.get_json()) == {"did": None}
    # A present but bad token on an optional route is still refused, not ignored.
    bad_optional = await client.get(
        "/xrpc/test.maybe", headers={"Authorization": "Bearer nope"}, scope_base=PEER
    )
    assert bad_optional.status_code == 401

    metrics = ctx.metrics.render().decode()
    assert 'coves_auth_failures_total{reason="bad_signature"} 2.0' in metrics
    assert 'coves_auth_failures_total{reason="missing"} 1.0' in metrics
    assert "eyJhbGciOiJFUzI1NiJ9" not in log_output.getvalue()


async def test_default_authenticator_refuses_credentials() -> None:
    app, _ = make_app()
    response = await app.test_client().get(
        "/xrpc/test.private", headers={"Authorization": "Bearer x"}, scope_base=PEER
    )
    assert response.status_code == 401


async def test_metrics_endpoint_reports_requests_and_latency() -> None:
    app, _ctx = make_app()
    client = app.test_client()
    await client.get("/xrpc/test.echo", scope_base=PEER)
    await client.get("/xrpc/test.echo", scope_base=PEER)
    await client.get("/xrpc/no.such.method", scope_base=PEER)
    response = await client.get("/metrics", scope_base=PEER)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = (await response.get_data()).decode()
    assert 'coves_http_requests_total{nsid="test.echo",status="200"} 2.0' in text
    assert 'coves_http_requests_total{nsid="unknown",status="501"} 1.0' in text
    assert 'coves_http_request_duration_seconds_bucket{le="0.005",nsid="test.echo"' in text
    assert "coves_http_requests_in_flight 0.0" in text


async def test_health_is_503_when_database_unreachable() -> None:
    app, _ = make_app()
    with trio.fail_after(10):
        response = await app.test_client().get("/xrpc/_health", scope_base=PEER)
    assert response.status_code == 503
    body = await response.get_json()
    assert body["database"] == {"reachable": False}
    assert body["status"] == "unhealthy"


async def test_unknown_route_is_xrpc_404() -> None:
    app, _ = make_app()
    response = await app.test_client().get("/nothing/here", scope_base=PEER)
    assert response.status_code == 404
    assert (await response.get_json())["error"] == "NotFound"
