"""The sealed session token authenticates XRPC calls, as Bearer or as the cookie."""

from __future__ import annotations

from typing import Any

import trio

from coves.oauth.tokens import SessionTokens
from tests.oauth.conftest import PUBLIC, WHOAMI, WRITE, OAuthWorld


async def get(world: OAuthWorld, headers: dict[str, str], nsid: str = WHOAMI) -> Any:
    with trio.fail_after(10):
        return await world.app.test_client().get(f"/xrpc/{nsid}", headers=headers)


async def post(world: OAuthWorld, headers: dict[str, str]) -> Any:
    with trio.fail_after(10):
        return await world.app.test_client().post(f"/xrpc/{WRITE}", headers=headers, json={})


async def test_bearer_session_token_names_the_viewer_and_session(world: OAuthWorld) -> None:
    session = await world.session()
    response = await get(world, {"Authorization": f"Bearer {world.token(session)}"})
    assert response.status_code == 200
    assert await response.get_json() == {
        "did": session.did,
        "method": "session",
        "session": session.session_id,
    }


async def test_cookie_authenticates_reads(world: OAuthWorld) -> None:
    session = await world.session()
    response = await get(world, {"Cookie": f"coves_session={world.token(session)}"})
    assert response.status_code == 200
    assert (await response.get_json())["did"] == session.did


async def test_cookie_post_from_this_site_is_accepted(world: OAuthWorld) -> None:
    session = await world.session()
    cookie = f"coves_session={world.token(session)}"
    for extra in ({"Origin": PUBLIC}, {"Sec-Fetch-Site": "same-origin"}):
        response = await post(world, {"Cookie": cookie, **extra})
        assert response.status_code == 200, extra


async def test_cookie_post_from_another_site_is_refused(world: OAuthWorld) -> None:
    session = await world.session()
    cookie = f"coves_session={world.token(session)}"
    for extra in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}):
        response = await post(world, {"Cookie": cookie, **extra})
        assert response.status_code == 403, extra
        body = await response.get_json()
        assert body["error"] == "Forbidden" and "this site" in body["message"]


async def test_bearer_post_needs_no_origin(world: OAuthWorld) -> None:
    session = await world.session()
    response = await post(world, {"Authorization": f"Bearer {world.token(session)}"})
    assert response.status_code == 200


async def test_tampered_token_is_401(world: OAuthWorld) -> None:
    session = await world.session()
    token = world.token(session)
    bad = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    response = await get(world, {"Authorization": f"Bearer {bad}"})
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"] == "AuthenticationRequired"
    assert "invalid_token" in response.headers["WWW-Authenticate"]


async def test_expired_token_is_401(world: OAuthWorld) -> None:
    session = await world.session()
    expired = SessionTokens(world.ctx.settings.oauth_seal_secret, ttl=-5).issue(
        session.did, session.session_id
    )
    response = await get(world, {"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in (await response.get_json())["message"]


async def test_token_of_a_deleted_session_is_useless(world: OAuthWorld) -> None:
    session = await world.session()
    token = world.token(session)
    assert (await get(world, {"Authorization": f"Bearer {token}"})).status_code == 200
    await world.service.store.delete_session(session.session_id)
    response = await get(world, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "sign in again" in (await response.get_json())["message"]


async def test_token_naming_another_did_for_the_session_is_refused(world: OAuthWorld) -> None:
    session = await world.session()
    forged = world.service.tokens.issue("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", session.session_id)
    response = await get(world, {"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_other_bearer_tokens_still_reach_their_verifiers(world: OAuthWorld) -> None:
    # A JWT is not taken for a session token: it goes to service auth and fails there.
    response = await get(world, {"Authorization": "Bearer eyJhbGciOiJFUzI1NksifQ.e30.c2ln"})
    assert response.status_code == 401
    assert "session" not in (await response.get_json())["message"]


async def test_rotating_the_seal_secret_keeps_everyone_signed_in(
    world: OAuthWorld, net: Any
) -> None:
    """OAUTH_SEAL_SECRET replaced, the old one in OAUTH_SEAL_OLD_SECRETS: tokens issued
    before still authenticate and new ones are sealed with the new secret; once the
    old secret is dropped, its tokens stop working."""
    import base64

    from coves.auth.base import AuthPolicy
    from coves.identity import IdentityResolver
    from coves.secrets import Secret
    from coves.xrpc.app import create_app
    from coves.xrpc.routing import Endpoint
    from tests.oauth.conftest import PLC_URL, oauth_context, oauth_settings, whoami

    session = await world.session()
    before = world.token(session)
    old = world.ctx.settings.oauth_seal_secret
    new = Secret(base64.b64encode(bytes(range(100, 132))).decode())

    def app_with(**secrets: Any) -> Any:
        fetcher = net.fetcher()
        identity = IdentityResolver(fetcher=fetcher, plc_url=PLC_URL, txt_lookup=net.txt_lookup)
        ctx = oauth_context(oauth_settings(**secrets), world.ctx.db, fetcher, identity)
        assert ctx.oauth is not None
        endpoint = Endpoint(WHOAMI, "query", whoami, AuthPolicy.REQUIRED)
        return ctx.oauth, create_app(ctx, {WHOAMI: endpoint})

    service, app = app_with(oauth_seal_secret=new, oauth_seal_old_secrets=(old,))
    with trio.fail_after(10):
        response = await app.test_client().get(
            f"/xrpc/{WHOAMI}", headers={"Authorization": f"Bearer {before}"}
        )
    assert response.status_code == 200
    after = service.tokens.issue(session.did, session.session_id)
    assert SessionTokens(new).open(after).session_id == session.session_id
    _, dropped = app_with(oauth_seal_secret=new)
    for token, expected in ((before, 401), (after, 200)):
        with trio.fail_after(10):
            response = await dropped.test_client().get(
                f"/xrpc/{WHOAMI}", headers={"Authorization": f"Bearer {token}"}
            )
        assert response.status_code == expected
