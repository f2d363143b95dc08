"""Authentication through the real HTTP dispatcher (Quart test client)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio

from coves import clock
from coves.atproto.keys import PrivateKey
from coves.auth.base import AuthPolicy
from coves.config import test_settings
from coves.context import AppContext
from coves.db import Database
from coves.xrpc.app import create_app
from coves.xrpc.routing import Endpoint, XRPCRequest
from tests.auth.helpers import ALICE, NSID, SERVICE_AUD, World
from tests.support import tokens

OPTIONAL_NSID = "social.coves.test.maybe"


async def whoami(req: XRPCRequest) -> dict[str, Any]:
    viewer = req.require_viewer()
    return {"did": viewer.did, "method": viewer.method}


async def maybe(req: XRPCRequest) -> dict[str, Any]:
    return {"did": req.viewer.did if req.viewer else None}


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def ctx() -> AppContext:
    """No database: these routes never touch it, and skipping the clone keeps tests fast."""
    return AppContext(settings=test_settings(), db=Database("postgresql:///unused"))


@pytest.fixture
def app(ctx: AppContext, world: World) -> Any:
    ctx = replace(ctx, authenticator=world.authenticator())
    endpoints = {
        NSID: Endpoint(NSID, "query", whoami, AuthPolicy.REQUIRED),
        OPTIONAL_NSID: Endpoint(OPTIONAL_NSID, "query", maybe, AuthPolicy.OPTIONAL),
    }
    return create_app(ctx, endpoints)


async def call(app: Any, authorization: str | None, nsid: str = NSID) -> Any:
    headers = {"Authorization": authorization} if authorization else {}
    with trio.fail_after(10):
        return await app.test_client().get(f"/xrpc/{nsid}", headers=headers)


async def test_valid_service_auth_reaches_the_handler(app: Any, world: World) -> None:
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    response = await call(app, f"Bearer {token}")
    assert response.status_code == 200
    assert await response.get_json() == {"did": ALICE, "method": "service_auth"}


async def test_missing_credentials_on_required_route(app: Any) -> None:
    response = await call(app, None)
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "AuthenticationRequired"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _bad_tokens(world: World) -> dict[str, str]:
    key = world.alice_key
    now = int(clock.wall_now())
    claims = tokens.service_auth_claims(ALICE, SERVICE_AUD, NSID)
    return {
        "expired": tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, iat=now - 99, exp=now - 60),
        "not_yet_valid": tokens.service_auth(
            key, ALICE, SERVICE_AUD, NSID, iat=now + 500, exp=now + 560
        ),
        "too_long_lived": tokens.service_auth(key, ALICE, SERVICE_AUD, NSID, lifetime=7200),
        "bad_audience": tokens.service_auth(key, ALICE, "did:web:evil.example", NSID),
        "bad_lxm": tokens.service_auth(key, ALICE, SERVICE_AUD, "com.atproto.repo.createRecord"),
        "bad_type": tokens.service_auth(
            key, ALICE, SERVICE_AUD, NSID, header={"typ": "refresh+jwt"}
        ),
        "bad_alg": tokens.unsigned({"typ": "JWT", "alg": "none"}, claims),
        "bad_signature": tokens.service_auth(PrivateKey.generate(), ALICE, SERVICE_AUD, NSID),
        "unknown_issuer": tokens.service_auth(
            key, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", SERVICE_AUD, NSID
        ),
        "malformed": "not.a.jwt",
    }


@pytest.mark.parametrize(
    "reason",
    [
        "expired",
        "not_yet_valid",
        "too_long_lived",
        "bad_audience",
        "bad_lxm",
        "bad_type",
        "bad_alg",
        "bad_signature",
        "unknown_issuer",
        "malformed",
    ],
)
async def test_each_failure_is_a_401_with_www_authenticate(
    app: Any, world: World, ctx: AppContext, reason: str
) -> None:
    response = await call(app, f"Bearer {_bad_tokens(world)[reason]}")
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"] == "AuthenticationRequired"
    assert "WWW-Authenticate" in response.headers
    counter = ctx.metrics.registry.get_sample_value("coves_auth_failures_total", {"reason": reason})
    assert counter == 1.0


async def test_replay_is_refused_over_http(app: Any, world: World) -> None:
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, NSID)
    assert (await call(app, f"Bearer {token}")).status_code == 200
    assert (await call(app, f"Bearer {token}")).status_code == 401


async def test_optional_route_anonymous_and_authenticated(app: Any, world: World) -> None:
    anon = await call(app, None, OPTIONAL_NSID)
    assert anon.status_code == 200 and (await anon.get_json()) == {"did": None}
    token = tokens.service_auth(world.alice_key, ALICE, SERVICE_AUD, OPTIONAL_NSID)
    authed = await call(app, f"Bearer {token}", OPTIONAL_NSID)
    assert (await authed.get_json()) == {"did": ALICE}
    assert "DPoP-Nonce" not in authed.headers  # only DPoP callers get nonces
    bad = await call(app, "Bearer garbage.token.here", OPTIONAL_NSID)
    assert bad.status_code == 401  # broken credentials are reported, not ignored


async def test_dpop_nonce_handshake_over_http(ctx: AppContext) -> None:
    from tests.auth.test_oauth_dpop import OAuthWorld

    w = OAuthWorld()
    ctx = replace(ctx, authenticator=w.auth)
    app = create_app(ctx, {NSID: Endpoint(NSID, "query", whoami, AuthPolicy.REQUIRED)})
    htu = f"https://localhost/xrpc/{NSID}"
    token = w.token()
    client = app.test_client()
    with trio.fail_after(10):
        first = await client.get(
            f"/xrpc/{NSID}",
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": w.proof(token, htu=htu, nonce=tokens.MISSING),
            },
        )
        assert first.status_code == 401
        assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
        nonce = first.headers["DPoP-Nonce"]
        second = await client.get(
            f"/xrpc/{NSID}",
            headers={
                "Authorization": f"DPoP {token}",
                "DPoP": w.proof(token, htu=htu, nonce=nonce),
            },
        )
    assert second.status_code == 200
    assert await second.get_json() == {"did": ALICE, "method": "oauth_dpop"}
    # The success carries the nonce for the next proof too (RFC 9449 §8.2).
    assert w.nonces.is_valid(second.headers["DPoP-Nonce"])
