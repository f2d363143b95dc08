"""Building the app's Authenticator from Settings."""

from __future__ import annotations

import base64
import hashlib
import hmac

from coves.auth.authenticator import ApiKeyVerifier, CovesAuthenticator
from coves.auth.nonces import DpopNonces
from coves.auth.oauth import JwksCache, OAuthTokenVerifier
from coves.auth.replay import SharedReplayGuard
from coves.auth.service_auth import DocumentSource, ServiceAuthVerifier
from coves.auth.session import SessionVerifier
from coves.config import Settings
from coves.db import Database
from coves.logs import get_logger
from coves.net import SafeFetcher

log = get_logger(__name__)


def dpop_nonce_secret(settings: Settings) -> bytes:
    """Derived from ENCRYPTION_KEY so every process of one deployment agrees on nonces."""
    key = base64.b64decode(settings.encryption_key.reveal())
    return hmac.new(key, b"coves dpop nonces v1", hashlib.sha256).digest()


def build_oauth(settings: Settings, fetcher: SafeFetcher) -> OAuthTokenVerifier | None:
    if not settings.oauth_issuers:
        return None
    return OAuthTokenVerifier(
        issuers=settings.oauth_issuers,
        audiences={
            settings.instance_did,
            settings.service_did_with_fragment,
            settings.appview_public_url,
        },
        jwks=JwksCache(fetcher),
        nonces=DpopNonces(dpop_nonce_secret(settings)),
    )


def build_authenticator(
    settings: Settings,
    documents: DocumentSource,
    fetcher: SafeFetcher | None = None,
    *,
    sessions: SessionVerifier | None = None,
    api_keys: ApiKeyVerifier | None = None,
    db: Database | None = None,
) -> CovesAuthenticator:
    """``db``: where used service-auth token ids are shared between processes and kept
    across restarts (without it, only this process remembers them)."""
    if settings.auth_skip_verify:
        # config.py refuses this in production; say so loudly anyway.
        log.warning("AUTH_SKIP_VERIFY is on: tokens are NOT verified (development only)")
    service_auth = ServiceAuthVerifier(
        documents,
        service_did=settings.instance_did,
        service_id=settings.appview_service_id,
        max_lifetime=float(settings.service_auth_max_lifetime_seconds),
        replay=SharedReplayGuard(db) if db is not None else None,
    )
    oauth = build_oauth(settings, fetcher) if fetcher is not None else None
    return CovesAuthenticator(
        service_auth,
        oauth,
        sessions=sessions,
        skip_verify=settings.auth_skip_verify,
        api_keys=api_keys,
    )
