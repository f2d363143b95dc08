"""An app with the OAuth service wired as in production, on a fake identity network.

The network is only for identity lookups and for failures of remote
servers; the sign-in flow itself is tested against the reference PDS
(tests/oauth/test_pds_flow.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from coves import clock
from coves.auth.base import AuthPolicy
from coves.auth.factory import build_authenticator
from coves.config import Settings, test_settings
from coves.context import AppContext
from coves.db import Database
from coves.identity import IdentityResolver
from coves.lexicon import LexiconRegistry
from coves.metrics import Metrics
from coves.net import SafeFetcher
from coves.oauth.jose import SigningKey, random_token
from coves.oauth.service import OAuthService, build_oauth_service
from coves.oauth.store import UserSession
from coves.xrpc.app import create_app
from coves.xrpc.routing import Endpoint, XRPCRequest
from tests.support.fake_did import PLC_URL, FakeNetwork

PUBLIC = "http://127.0.0.1:8081"
FRONTEND_CALLBACK = "https://app.coves.test/api/auth/callback"
ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
WHOAMI = "social.coves.test.whoami"
WRITE = "social.coves.test.write"


async def whoami(req: XRPCRequest) -> dict[str, Any]:
    viewer = req.require_viewer()
    return {"did": viewer.did, "method": viewer.method, "session": viewer.session_id}


@dataclass
class OAuthWorld:
    ctx: AppContext
    service: OAuthService
    net: FakeNetwork
    app: Any

    async def session(self, did: str = ALICE, *, access_ttl: float = 3600.0) -> UserSession:
        """A stored session as the callback would leave it (no PDS involved)."""
        now = clock.wall_now()
        session = UserSession(
            session_id=random_token(24),
            did=did,
            handle="alice.test",
            pds_url="https://pds.test",
            issuer="https://pds.test",
            scope="atproto",
            access_token=random_token(),
            refresh_token=random_token(),
            dpop_key=SigningKey.generate(),
            access_expires_at=now + access_ttl,
            expires_at=now + 86_400,
        )
        await self.service.store.create_session(session)
        return session

    def token(self, session: UserSession) -> str:
        return self.service.tokens.issue(session.did, session.session_id)


def oauth_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "appview_public_url": PUBLIC,
        "plc_url": PLC_URL,
        "oauth_web_redirects": (FRONTEND_CALLBACK, PUBLIC + "/"),
    }
    base.update(overrides)
    return test_settings(**base)


@pytest.fixture
def net() -> FakeNetwork:
    return FakeNetwork()


def oauth_context(
    settings: Settings, db: Database, fetcher: SafeFetcher, identity: IdentityResolver
) -> AppContext:
    """A context wired as build_context wires it, on the given network."""
    service = build_oauth_service(settings, db, fetcher, identity)
    return AppContext(
        settings=settings,
        db=db,
        metrics=Metrics(),
        lexicons=LexiconRegistry.load(),
        identity=identity,
        authenticator=build_authenticator(settings, identity, fetcher, sessions=service.verifier),
        oauth=service,
    )


@pytest.fixture
def world(db: Database, net: FakeNetwork) -> OAuthWorld:
    fetcher = net.fetcher()
    identity = IdentityResolver(fetcher=fetcher, plc_url=PLC_URL, txt_lookup=net.txt_lookup)
    ctx = oauth_context(oauth_settings(), db, fetcher, identity)
    service = ctx.oauth
    assert service is not None
    endpoints = {
        WHOAMI: Endpoint(WHOAMI, "query", whoami, AuthPolicy.REQUIRED),
        WRITE: Endpoint(WRITE, "procedure", whoami, AuthPolicy.REQUIRED),
    }
    return OAuthWorld(ctx, service, net, create_app(ctx, endpoints))
