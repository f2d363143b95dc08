"""Building the app's Authenticator from Settings."""

from __future__ import annotations

from coves.auth.authenticator import CovesAuthenticator, OAuthVerifier
from coves.auth.service_auth import DocumentSource, ServiceAuthVerifier
from coves.config import Settings
from coves.logs import get_logger

log = get_logger(__name__)


def build_authenticator(
    settings: Settings, documents: DocumentSource, oauth: OAuthVerifier | None = None
) -> CovesAuthenticator:
    if settings.auth_skip_verify:
        # config.py refuses this in production; say so loudly anyway.
        log.warning("AUTH_SKIP_VERIFY is on: tokens are NOT verified (development only)")
    service_auth = ServiceAuthVerifier(
        documents,
        service_did=settings.instance_did,
        service_id=settings.appview_service_id,
        max_lifetime=float(settings.service_auth_max_lifetime_seconds),
    )
    return CovesAuthenticator(service_auth, oauth, skip_verify=settings.auth_skip_verify)
