"""Everything the OAuth routes and the write path need, built once from Settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from coves.auth.session import SessionVerifier
from coves.config import Settings
from coves.db import Database
from coves.db.queries import oauth as q
from coves.identity.resolver import IdentityResolver
from coves.net import SafeFetcher
from coves.oauth.client import OAuthClient, build_client
from coves.oauth.discovery import Discovery
from coves.oauth.dpop import DpopClient
from coves.oauth.flow import LoginFlow
from coves.oauth.grants import Grants
from coves.oauth.sessions import SCOPE as SESSION_REFRESH_SCOPE
from coves.oauth.sessions import SessionManager
from coves.oauth.store import OAuthStore
from coves.oauth.tokens import SessionTokens
from coves.single_refresh import SingleRefresh


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def match_redirect(target: str, allowed: Sequence[str]) -> str | None:
    """``target`` when scheme, host and path equal an allowlisted entry's; else None.

    A query string is kept (clients carry their own state in it); a
    fragment, credentials or anything else differing is refused, so the
    sign-in can never be turned into an open redirect.
    """
    if not target or len(target) > 2048 or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.fragment or parts.username is not None or parts.password is not None:
        return None
    for entry in allowed:
        want = urlsplit(entry)
        if (parts.scheme, parts.netloc.lower(), parts.path or "/") == (
            want.scheme,
            want.netloc.lower(),
            want.path or "/",
        ):
            return target
    return None


@dataclass
class OAuthService:
    client: OAuthClient
    discovery: Discovery
    dpop: DpopClient
    grants: Grants
    store: OAuthStore
    flow: LoginFlow
    sessions: SessionManager
    tokens: SessionTokens
    verifier: SessionVerifier
    web_redirects: tuple[str, ...]
    mobile_redirects: tuple[str, ...]
    cookie_secure: bool

    def web_target(self, requested: str | None) -> str | None:
        if not requested:
            return self.web_redirects[0]
        return match_redirect(requested, self.web_redirects)

    def mobile_target(self, requested: str | None) -> str | None:
        if not requested:
            return self.mobile_redirects[0] if self.mobile_redirects else None
        return match_redirect(requested, self.mobile_redirects)


def build_oauth_service(
    settings: Settings,
    db: Database,
    fetcher: SafeFetcher,
    identity: IdentityResolver,
    *,
    client: OAuthClient | None = None,
) -> OAuthService:
    client = client or build_client(settings)
    discovery = Discovery(fetcher, identity, allow_http=not settings.is_production)
    dpop = DpopClient(fetcher)
    grants = Grants(client, dpop)
    store = OAuthStore(db, settings.secret_box())
    flow = LoginFlow(client, discovery, grants, store)
    sessions = SessionManager(
        store,
        discovery,
        grants,
        session_ttl=flow.session_ttl(),
        single=SingleRefresh(db, SESSION_REFRESH_SCOPE),
    )
    tokens = SessionTokens(settings.oauth_seal_secret, old_secrets=settings.oauth_seal_old_secrets)
    web_redirects = settings.oauth_web_redirects or (client.public_url + "/",)
    origins = {client.public_url, _origin(settings.appview_public_url)}
    origins.update(_origin(u) for u in web_redirects)
    origins.update(o for o in settings.cors_origins if o != "*")

    async def lookup(session_id: str) -> dict[str, Any] | None:
        return await q.session_owner(db, session_id)

    verifier = SessionVerifier(tokens, lookup, {o for o in origins if o})
    return OAuthService(
        client=client,
        discovery=discovery,
        dpop=dpop,
        grants=grants,
        store=store,
        flow=flow,
        sessions=sessions,
        tokens=tokens,
        verifier=verifier,
        web_redirects=web_redirects,
        mobile_redirects=settings.oauth_mobile_redirects,
        cookie_secure=settings.is_production,
    )
