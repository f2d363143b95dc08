"""Client key rotation: earlier keys stay published and sign their own sessions' refreshes."""

from __future__ import annotations

import jwt
import trio
from pytest import raises

from coves import clock
from coves.auth.jwk import public_key_from_jwk
from coves.errors import XRPCError
from coves.identity import IdentityResolver
from coves.oauth.client import build_client
from coves.oauth.jose import SigningKey, random_token
from coves.oauth.service import build_oauth_service
from coves.oauth.store import UserSession
from coves.secrets import Secret
from tests.oauth.conftest import OAuthWorld, oauth_settings
from tests.support.fake_auth_server import FakeAuthServer
from tests.support.fake_did import PLC_URL

OLD = "33" * 32
NEW = "44" * 32


def settings(**kw: object) -> object:
    return oauth_settings(appview_public_url="https://coves.example").replace(
        oauth_client_private_key=Secret(NEW), **kw
    )


def claims(token: str, jwk: dict[str, str]) -> dict[str, object]:
    key = public_key_from_jwk({k: jwk[k] for k in ("kty", "crv", "x", "y")}).key
    return jwt.decode(token, key, algorithms=["ES256"], audience="https://pds.example")


def test_old_keys_are_published_and_sign_for_their_sessions() -> None:
    client = build_client(settings(oauth_client_old_keys=(Secret(OLD),)))  # type: ignore[arg-type]
    current, old = client.jwks()["keys"]
    assert current["kid"] == client.kid != old["kid"]
    assert current["kid"] == SigningKey.from_hex(NEW).jkt[:16]
    assert old["kid"] == SigningKey.from_hex(OLD).jkt[:16]
    by_old = client.auth_params("https://pds.example", old["kid"])["client_assertion"]
    assert jwt.get_unverified_header(by_old)["kid"] == old["kid"]
    assert claims(by_old, old)["iss"] == client.client_id
    by_current = client.auth_params("https://pds.example")["client_assertion"]
    assert jwt.get_unverified_header(by_current)["kid"] == current["kid"]
    assert claims(by_current, current)["sub"] == client.client_id
    assert client.has_key(old["kid"]) and client.has_key(None)
    assert not client.has_key("retired-kid")


async def test_a_session_of_a_retired_key_ends_without_calling_the_server(
    world: OAuthWorld,
) -> None:
    server = FakeAuthServer()
    server.install(world.net)
    config = settings()
    identity = IdentityResolver(fetcher=world.net.fetcher(), plc_url=PLC_URL)
    service = build_oauth_service(
        config,
        world.ctx.db,
        world.net.fetcher(),
        identity,  # type: ignore[arg-type]
    )
    now = clock.wall_now()
    session = UserSession(
        session_id=random_token(24),
        did="did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
        handle="alice.test",
        pds_url="https://pds.test",
        issuer="https://pds.test",
        scope="atproto",
        access_token=random_token(),
        refresh_token=random_token(),
        dpop_key=SigningKey.generate(),
        access_expires_at=now - 1,
        expires_at=now + 86_400,
        client_kid=SigningKey.from_hex(OLD).jkt[:16],
    )
    await service.store.create_session(session)
    with trio.fail_after(10), raises(XRPCError) as info:
        await service.sessions.usable(session.session_id)
    assert info.value.status == 401 and info.value.error == "SessionExpired"
    assert server.refreshes == []
    assert await service.store.session(session.session_id) is None
