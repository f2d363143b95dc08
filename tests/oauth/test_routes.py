"""The sign-in HTTP surface without an authorization server: documents, refusals, probes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import jwt
import trio

from coves.auth.jwk import public_key_from_jwk
from coves.oauth.client import SCOPE
from coves.oauth.service import match_redirect
from tests.oauth.conftest import ALICE, FRONTEND_CALLBACK, PUBLIC, OAuthWorld
from tests.support.fake_auth_server import FakeAuthServer

BOB = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"


async def get(world: OAuthWorld, path: str, headers: dict[str, str] | None = None) -> Any:
    with trio.fail_after(10):
        return await world.app.test_client().get(path, headers=headers or {})


async def post(world: OAuthWorld, path: str, **kw: Any) -> Any:
    with trio.fail_after(10):
        return await world.app.test_client().post(path, **kw)


async def test_loopback_client_metadata(world: OAuthWorld) -> None:
    response = await get(world, "/oauth-client-metadata.json")
    assert response.status_code == 200
    doc = await response.get_json()
    assert doc["client_id"].startswith("http://localhost?")
    assert doc["redirect_uris"] == ["http://127.0.0.1:8081/oauth/callback"]
    assert doc["token_endpoint_auth_method"] == "none"
    assert doc["dpop_bound_access_tokens"] is True
    assert doc["scope"] == SCOPE and SCOPE.startswith("atproto ")
    assert (await (await get(world, "/oauth-client-keys.json")).get_json()) == {"keys": []}


def test_confidential_client_metadata_and_keys() -> None:
    from coves.oauth.client import build_client
    from tests.oauth.conftest import oauth_settings

    settings = oauth_settings(
        appview_public_url="https://coves.example", oauth_client_private_key=None
    )
    from coves.secrets import Secret

    settings = settings.replace(oauth_client_private_key=Secret("22" * 32))
    client = build_client(settings)
    doc = client.metadata()
    assert doc["client_id"] == "https://coves.example/oauth-client-metadata.json"
    assert doc["redirect_uris"] == ["https://coves.example/oauth/callback"]
    assert doc["token_endpoint_auth_method"] == "private_key_jwt"
    assert doc["jwks_uri"] == "https://coves.example/oauth-client-keys.json"
    assert doc["application_type"] == "web"
    (published,) = client.jwks()["keys"]
    assert "d" not in published and published["kid"] == client.kid
    # The assertion the client sends verifies with the key it publishes.
    params = client.auth_params("https://pds.example")
    claims = jwt.decode(
        params["client_assertion"],
        public_key_from_jwk({k: published[k] for k in ("kty", "crv", "x", "y")}).key,
        algorithms=["ES256"],
        audience="https://pds.example",
    )
    assert claims["iss"] == doc["client_id"]


def test_redirect_allowlist() -> None:
    allowed = ("https://app.example/cb", "social.coves:/callback")
    assert match_redirect("https://app.example/cb", allowed)
    assert match_redirect("https://app.example/cb?next=/c/x", allowed)
    assert match_redirect("social.coves:/callback", allowed)
    for bad in (
        "https://app.example/cb/../evil",
        "https://app.example/cb2",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://user@app.example/cb",
        "https://app.example/cb#x",
        "http://app.example/cb",
        "//evil.example/cb",
        "/cb",
        "javascript:alert(1)",
        "social.coves:/other",
        "https://app.example\\@evil.example/cb",
    ):
        assert match_redirect(bad, allowed) is None, bad


async def test_login_refuses_a_redirect_outside_the_allowlist(world: OAuthWorld) -> None:
    for path in (
        f"/oauth/login?handle=alice.test&redirect_uri={quote('https://evil.example/cb')}",
        f"/oauth/mobile/login?handle=alice.test&redirect_uri={quote('evil:/callback')}",
    ):
        response = await get(world, path)
        assert response.status_code == 400, path
        assert "Location" not in response.headers
        assert (await response.get_json())["error"] == "InvalidRedirect"
    assert world.net.requests == []  # refused before resolving anything


async def test_login_needs_a_handle(world: OAuthWorld) -> None:
    response = await get(world, "/oauth/login")
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "InvalidRequest"


async def test_login_with_an_unknown_account_is_a_clear_400(world: OAuthWorld) -> None:
    response = await get(world, "/oauth/login?handle=did:plc:zzzzzzzzzzzzzzzzzzzzzzzz")
    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"] == "InvalidIdentity"


async def test_login_when_the_pds_names_a_broken_auth_server(world: OAuthWorld) -> None:
    import httpx

    world.net.add_plc(ALICE, None, None, pds="https://pds.test")
    world.net.routes["https://pds.test/.well-known/oauth-protected-resource"] = lambda r: (
        httpx.Response(
            200,
            json={"resource": "https://pds.test", "authorization_servers": ["https://as.test"]},
        )
    )
    server = FakeAuthServer(issuer="https://as.test")
    bad = server.metadata()
    bad["require_pushed_authorization_requests"] = False
    world.net.routes["https://as.test/.well-known/oauth-authorization-server"] = lambda r: (
        httpx.Response(200, json=bad)
    )
    response = await get(world, f"/oauth/login?handle={ALICE}")
    assert response.status_code == 502
    assert "require_pushed_authorization_requests" in (await response.get_json())["message"]


async def test_callback_with_a_forged_state(world: OAuthWorld) -> None:
    response = await get(world, "/oauth/callback?state=forged&iss=https://pds.test&code=x")
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert (await response.get_json())["error"] == "InvalidState"
    response = await get(world, "/oauth/callback?code=x")
    assert response.status_code == 400


async def test_me_reports_the_signed_in_account(world: OAuthWorld) -> None:
    session = await world.session()
    for headers in (
        {"Authorization": f"Bearer {world.token(session)}"},
        {"Cookie": f"coves_session={world.token(session)}"},
    ):
        response = await get(world, "/api/me", headers)
        assert response.status_code == 200
        assert await response.get_json() == {"did": ALICE, "handle": "alice.test"}
        assert response.headers["Cache-Control"] == "no-store"
    assert (await get(world, "/api/me")).status_code == 401


async def test_logout_makes_the_token_useless(world: OAuthWorld) -> None:
    server = FakeAuthServer()
    server.install(world.net)
    session = await world.session()
    token = world.token(session)
    response = await post(world, "/oauth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "coves_session=;" in response.headers["Set-Cookie"]
    assert server.revocations == [session.refresh_token]  # revoked at the AS
    assert await world.service.store.session(session.session_id) is None
    assert (await get(world, "/api/me", {"Authorization": f"Bearer {token}"})).status_code == 401
    # A second logout with the same token is harmless.
    again = await post(world, "/oauth/logout", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200


async def test_cross_site_cookie_logout_is_refused(world: OAuthWorld) -> None:
    session = await world.session()
    cookie = f"coves_session={world.token(session)}"
    response = await post(
        world, "/oauth/logout", headers={"Cookie": cookie, "Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert await world.service.store.session(session.session_id) is not None
    same = await post(world, "/oauth/logout", headers={"Cookie": cookie, "Origin": PUBLIC})
    assert same.status_code == 200
    assert await world.service.store.session(session.session_id) is None


async def test_refresh_checks_the_token_belongs_to_the_session(world: OAuthWorld) -> None:
    session = await world.session()
    other = await world.session()
    token = world.token(session)
    for body, status in (
        ({"did": ALICE, "session_id": other.session_id, "sealed_token": token}, 401),
        ({"did": BOB, "session_id": session.session_id, "sealed_token": token}, 401),
        (
            {
                "did": ALICE,
                "session_id": session.session_id,
                "sealed_token": token[:20] + ("A" if token[20] != "A" else "B") + token[21:],
            },
            401,
        ),
        ({"did": ALICE, "session_id": session.session_id}, 400),
    ):
        response = await post(world, "/oauth/refresh", json=body)
        assert response.status_code == status, body


async def test_web_redirect_default_is_the_first_allowlisted(world: OAuthWorld) -> None:
    assert world.service.web_target(None) == FRONTEND_CALLBACK
    assert world.service.mobile_target(None) == "social.coves:/callback"
