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
