"""Lazy refresh of users' sessions, against a fake authorization server that fails on cue."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio

from coves import clock
from coves.errors import XRPCError
from coves.oauth.jose import random_token
from tests.oauth.conftest import ALICE, WHOAMI, OAuthWorld
from tests.support.fake_auth_server import FakeAuthServer


@pytest.fixture
def server(world: OAuthWorld) -> FakeAuthServer:
    server = FakeAuthServer()
    server.install(world.net)
    return server


async def test_fresh_session_is_used_as_is(world: OAuthWorld, server: FakeAuthServer) -> None:
    session = await world.session(access_ttl=3600)
    with trio.fail_after(10):
        usable = await world.service.sessions.usable(session.session_id)
    assert usable.access_token == session.access_token
    assert server.refreshes == []


async def test_expiring_session_refreshes_and_rotates(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    session = await world.session(access_ttl=10)
    with trio.fail_after(10):
        usable = await world.service.sessions.usable(session.session_id)
    assert usable.access_token == server.issued[-1] != session.access_token
    (form,) = server.refreshes  # one refresh, sent after the nonce retry
    assert form["refresh_token"] == session.refresh_token
    assert form["client_id"] == world.service.client.client_id
    stored = await world.service.store.session(session.session_id)
    assert stored is not None
    assert stored.access_token == usable.access_token
    assert stored.refresh_token != session.refresh_token  # the rotated one is kept
    assert stored.dpop_key.jkt == session.dpop_key.jkt  # same DPoP key for the session's life
    assert stored.access_expires_at > clock.wall_now() + 3000


async def test_concurrent_writes_of_one_session_refresh_once(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    session = await world.session(access_ttl=5)
    results: list[str] = []

    async def write() -> None:
        usable = await world.service.sessions.usable(session.session_id)
        results.append(usable.access_token)

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(write)
    assert len(server.refreshes) == 1
    assert len(set(results)) == 1 and results[0] == server.issued[0]


async def test_revoked_refresh_token_ends_the_session(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    server.refresh_status = "invalid_grant"
    session = await world.session(access_ttl=5)
    token = world.token(session)
    with trio.fail_after(10), pytest.raises(XRPCError) as info:
        await world.service.sessions.usable(session.session_id)
    assert info.value.status == 401 and info.value.error == "SessionExpired"
    assert "sign in again" in info.value.message
    assert await world.service.store.session(session.session_id) is None
    with trio.fail_after(10):
        response = await world.app.test_client().get(
            f"/xrpc/{WHOAMI}", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 401


async def test_auth_server_down_changes_nothing(world: OAuthWorld, server: FakeAuthServer) -> None:
    server.refresh_status = "down"
    session = await world.session(access_ttl=5)
    with trio.fail_after(10), pytest.raises(XRPCError) as info:
        await world.service.sessions.usable(session.session_id)
    assert info.value.status == 503
    stored = await world.service.store.session(session.session_id)
    assert stored is not None
    assert (stored.access_token, stored.refresh_token) == (
        session.access_token,
        session.refresh_token,
    )
    # The lease was released: once the server is back, the next write refreshes.
    server.refresh_status = "ok"
    with trio.fail_after(10):
        usable = await world.service.sessions.usable(session.session_id)
    assert usable.access_token == server.issued[-1]


async def test_refresh_waits_for_another_process_holding_the_lease(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    from datetime import timedelta

    from coves.db.queries import refresh_leases
    from coves.oauth.sessions import SCOPE

    session = await world.session(access_ttl=5)
    store = world.service.store
    now = clock.utcnow()
    assert await refresh_leases.claim(  # "process B" is refreshing it
        world.ctx.db, SCOPE, session.session_id, holder="b", now=now,
        until=now + timedelta(seconds=30),
    )  # fmt: skip
    got: list[str] = []

    async def write() -> None:
        got.append((await world.service.sessions.usable(session.session_id)).access_token)

    with trio.fail_after(15):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(write)
            await trio.sleep(0.6)
            assert got == []  # still waiting for the other process
            later = clock.wall_now() + 3600
            done = replace(session, access_token=random_token(), access_expires_at=later)
            assert await store.store_refresh(done)
    assert got == [done.access_token]
    assert server.refreshes == []  # this process never refreshed


async def test_two_processes_refresh_one_session_once(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    """Two processes (two pools on one database, each its own SessionManager) write
    for one expiring session at once: the authorization server sees one refresh
    (a second would reuse the rotated refresh token)."""
    from coves.db import Database
    from coves.oauth.sessions import SCOPE, SessionManager
    from coves.oauth.store import OAuthStore
    from coves.single_refresh import SingleRefresh

    session = await world.session(access_ttl=5)
    db = world.ctx.db
    other_db = Database(db.conninfo, pool_size=4, statement_timeout_ms=20_000)
    await other_db.open()
    try:
        mine = world.service.sessions
        theirs = SessionManager(
            OAuthStore(other_db, world.ctx.settings.secret_box()),
            world.service.discovery,
            mine._grants,
            session_ttl=mine.session_ttl,
            single=SingleRefresh(other_db, SCOPE),
        )
        tokens: list[str] = []

        async def write(sessions: SessionManager) -> None:
            tokens.append((await sessions.usable(session.session_id)).access_token)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(write, mine)
                    nursery.start_soon(write, theirs)
    finally:
        await other_db.close()
    assert len(server.refreshes) == 1
    assert mine.refreshes + theirs.refreshes == 1
    assert set(tokens) == {server.issued[0]}


async def test_refresh_route_issues_a_new_token(world: OAuthWorld, server: FakeAuthServer) -> None:
    session = await world.session()
    token = world.token(session)
    with trio.fail_after(10):
        response = await world.app.test_client().post(
            "/oauth/refresh",
            json={"did": ALICE, "session_id": session.session_id, "sealed_token": token},
        )
    assert response.status_code == 200
    body = await response.get_json()
    assert set(body) >= {"sealed_token", "did", "session_id", "handle"}
    assert body["sealed_token"] != token and body["session_id"] == session.session_id
    assert len(server.refreshes) == 1
    with trio.fail_after(10):
        me = await world.app.test_client().get(
            "/api/me", headers={"Authorization": f"Bearer {body['sealed_token']}"}
        )
    assert (await me.get_json())["did"] == ALICE


async def test_refresh_route_with_a_revoked_grant_says_sign_in(
    world: OAuthWorld, server: FakeAuthServer
) -> None:
    server.refresh_status = "invalid_grant"
    session = await world.session()
    body = {"did": ALICE, "session_id": session.session_id, "sealed_token": world.token(session)}
    with trio.fail_after(10):
        response = await world.app.test_client().post("/oauth/refresh", json=body)
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "SessionExpired"
