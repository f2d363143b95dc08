"""Edges of the raw ASGI dispatcher that Quart's routing used to decide."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from quart_trio import QuartTrio

from coves.auth.base import AuthPolicy
from coves.xrpc.app import create_app
from coves.xrpc.routing import Router, XRPCRequest
from tests.foundation.conftest import offline_context

PEER = {"client": ("203.0.113.9", 50000)}


def make_app() -> QuartTrio:
    router = Router()

    @router.query("test.echo")
    async def echo(req: XRPCRequest) -> Any:
        return {"params": req.params, "custom": req.headers.get("x-custom")}

    @router.procedure("test.create", auth=AuthPolicy.NONE)
    async def create(req: XRPCRequest) -> Any:
        return {"got": req.body}

    ctx = offline_context()
    ctx = replace(ctx, settings=ctx.settings.replace(max_request_body_bytes=1024))
    return create_app(ctx, router.endpoints)


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("TRACE", "/xrpc/test.echo", 405, "InvalidRequest"),  # the path exists
        ("GET", "/xrpc/", 404, "NotFound"),
        ("GET", "/xrpc/a/b", 404, "NotFound"),
        ("GET", "/xrpc/test.echo/", 404, "NotFound"),
        ("POST", "/xrpc/_health", 405, "InvalidRequest"),  # not an XRPC method: no 5xx
        ("PUT", "/xrpc/test.echo", 400, "InvalidRequest"),
    ],
)
async def test_routing_edges(method: str, path: str, status: int, error: str) -> None:
    response = await make_app().test_client().open(path, method=method, scope_base=PEER)
    assert response.status_code == status
    assert (await response.get_json())["error"] == error


async def test_query_string_decoding_matches_werkzeug() -> None:
    response = (
        await make_app()
        .test_client()
        .get(
            "/xrpc/test.echo?a=1&a=2&b=&c=%ZZ&d=%C3%A9+x",
            headers={"X-Custom": "yes"},
            scope_base=PEER,
        )
    )
    body = await response.get_json()
    assert body["params"] == {"a": ["1", "2"], "b": "", "c": "%ZZ", "d": "é x"}
    assert body["custom"] == "yes"  # handlers see lowercased header names


async def test_head_on_a_query_is_an_empty_200() -> None:
    response = await make_app().test_client().head("/xrpc/test.echo", scope_base=PEER)
    assert response.status_code == 200
    assert (await response.get_data()) == b""
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["RateLimit-Remaining"] == "99"


async def test_declared_oversize_body_is_413_and_closes_the_connection() -> None:
    response = (
        await make_app()
        .test_client()
        .post(
            "/xrpc/test.create",
            data=b'{"x":"' + b"a" * 2000 + b'"}',
            headers={"Content-Type": "application/json"},
            scope_base=PEER,
        )
    )
    assert response.status_code == 413
    assert response.headers["Connection"] == "close"
    assert (await response.get_json())["error"] == "PayloadTooLarge"


async def test_json_content_type_with_parameters_is_accepted() -> None:
    response = (
        await make_app()
        .test_client()
        .post(
            "/xrpc/test.create",
            data=b'{"x":1}',
            headers={"Content-Type": "Application/JSON; charset=utf-8"},
            scope_base=PEER,
        )
    )
    assert response.status_code == 200
    assert (await response.get_json()) == {"got": {"x": 1}}
