"""Signing in through the reference PDS's own authorization server, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import trio

from coves.auth.jwt import parse_jwt
from coves.db import Database
from tests.oauth.conftest import FRONTEND_CALLBACK, WHOAMI
from tests.oauth.live import Live, open_live
from tests.support.pds import TestPds


@pytest.fixture
async def live(pds: TestPds, db: Database) -> AsyncIterator[Live]:
    async with open_live(pds, db) as live:
        yield live


async def test_web_sign_in_sets_the_session_cookie(live: Live) -> None:
    account = await live.account()
    with trio.fail_after(60):
        _browser, landing = await live.sign_in_web(
            account, redirect_uri=FRONTEND_CALLBACK, state="client-csrf-1"
        )
    assert landing.status == 302
    assert landing.location.startswith(FRONTEND_CALLBACK + "?")
    assert landing.query == {"state": "client-csrf-1"}  # the client's state, nothing secret
    token = landing.coves_cookies["coves_session"]
    assert "coves_oauth_binding" not in landing.coves_cookies
    with trio.fail_after(20):
        me = await live.app.test_client().get(
            "/api/me", headers={"Cookie": f"coves_session={token}"}
        )
        call = await live.app.test_client().get(
            f"/xrpc/{WHOAMI}", headers={"Authorization": f"Bearer {token}"}
        )
    assert me.status_code == 200
    assert await me.get_json() == {"did": account.did, "handle": account.handle}
    assert (await call.get_json())["did"] == account.did
    # What Coves keeps: DPoP-bound tokens from this PDS, for this account, sealed.
    (session,) = [
        s
        for s in [await live.service.store.session((await call.get_json())["session"])]
        if s is not None
    ]
    assert session.issuer == live.pds.url and session.pds_url == live.pds.url
    assert "atproto" in session.scope.split()
    claims = parse_jwt(session.access_token).payload
    assert claims["sub"] == account.did
    assert claims["cnf"]["jkt"] == session.dpop_key.jkt
    raw = await live.ctx.db.fetchval(
        "SELECT secrets_sealed FROM oauth_sessions WHERE session_id = %s", (session.session_id,)
    )
    assert session.access_token.encode() not in bytes(raw)
    assert session.refresh_token.encode() not in bytes(raw)


async def test_mobile_sign_in_hands_the_token_to_the_app(live: Live) -> None:
    account = await live.account()
    with trio.fail_after(60):
        landing = await live.sign_in_mobile(account)
    assert landing.status == 302
    assert landing.location.startswith("social.coves:/callback?")
    query = landing.query
    assert set(query) == {"token", "did", "session_id", "handle"}
    assert (query["did"], query["handle"]) == (account.did, account.handle)
    assert "coves_session" not in landing.coves_cookies  # mobile gets no cookie
    with trio.fail_after(30):
        me = await live.app.test_client().get(
            "/api/me", headers={"Authorization": f"Bearer {query['token']}"}
        )
        assert me.status_code == 200
        refreshed = await live.app.test_client().post(
            "/oauth/refresh",
            json={
                "did": account.did,
                "session_id": query["session_id"],
                "sealed_token": query["token"],
            },
        )
    assert refreshed.status_code == 200, await refreshed.get_data()
    body = await refreshed.get_json()
    assert body["session_id"] == query["session_id"]
    # The refresh went to the PDS: the stored tokens were rotated.
    session = await live.service.store.session(query["session_id"])
    assert session is not None and live.service.sessions.refreshes == 1
    with trio.fail_after(20):
        logout = await live.app.test_client().post(
            "/oauth/logout", headers={"Authorization": f"Bearer {body['sealed_token']}"}
        )
        after = await live.app.test_client().get(
            "/api/me", headers={"Authorization": f"Bearer {body['sealed_token']}"}
        )
    assert logout.status_code == 200
    assert after.status_code == 401
    # Revoked at the PDS too: its refresh token no longer works.
    with trio.fail_after(20):
        server = await live.service.discovery.auth_server(session.issuer)
        with pytest.raises(Exception) as info:
            await live.service.grants.refresh(
                server, session.dpop_key, session.refresh_token, session.client_kid
            )
    assert getattr(info.value, "status", None) == 401


async def test_callback_from_another_browser_is_refused(live: Live) -> None:
    account = await live.account()
    browser = live.browser()
    with trio.fail_after(60):
        authorize = await browser.start(f"/oauth/login?handle={account.handle}")
        callback = await browser.authorize(authorize, account.handle, account.password)
        other = live.browser()  # no binding cookie: a victim's browser fed the link
        landing = await other.finish(callback)
    assert landing.status == 302
    assert "coves_session" not in landing.coves_cookies
    assert landing.query["error"] == "InvalidState"


async def test_callback_with_another_issuer_is_refused(live: Live) -> None:
    account = await live.account()
    browser = live.browser()
    with trio.fail_after(60):
        authorize = await browser.start(f"/oauth/login?handle={account.handle}")
        callback = await browser.authorize(authorize, account.handle, account.password)
        parts = urlsplit(callback)
        forged = callback.replace("iss=http", "iss=https", 1)
        assert forged != callback and parts.query
        landing = await browser.finish(forged)
    assert "coves_session" not in landing.coves_cookies
    assert landing.query["error"] == "InvalidIssuer"
    # The state was used up: replaying the genuine callback does not sign in either.
    with trio.fail_after(20):
        replay = await browser.finish(callback)
    assert "coves_session" not in replay.coves_cookies


async def test_denied_consent_comes_back_as_an_error(live: Live) -> None:
    account = await live.account()
    browser = live.browser()
    with trio.fail_after(60):
        authorize = await browser.start(f"/oauth/mobile/login?handle={account.handle}")
        # The user presses "deny" on the PDS page: the AS redirects with error=access_denied.
        callback = await browser.reject(authorize)
        landing = await browser.finish(callback)
    assert landing.location.startswith("social.coves:/callback?")
    assert landing.query["error"] == "AuthorizationDenied"
    assert "token" not in landing.query
