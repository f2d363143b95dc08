"""Who Coves is to an authorization server: client id, metadata, keys, scope.

Two forms, chosen from configuration:

* **Confidential web client** (production): the client id is the URL of
  ``/oauth-client-metadata.json``; Coves authenticates to the token endpoint
  with ``private_key_jwt`` signed by ``OAUTH_CLIENT_PRIVATE_KEY`` (public half
  at ``/oauth-client-keys.json``). Refresh tokens of confidential clients live
  up to 180 days instead of two weeks.
* **Loopback development client**: when the public URL is a loopback
  address in development, the client id is ``http://localhost?...`` and no
  metadata is fetched by the authorization server (atproto's loopback
  convention). It is a public client (no key), so only for local runs/tests.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from coves.config import Settings
from coves.logs import get_logger
from coves.oauth.jose import CLIENT_ASSERTION_TYPE, SigningKey, client_assertion

log = get_logger(__name__)

# What the writes through Coves need, and nothing more: the collections Coves
# writes into users' repositories, and image uploads for profile pictures.
WRITE_COLLECTIONS = (
    "social.coves.actor.block",
    "social.coves.actor.profile",
    "social.coves.community.block",
    "social.coves.community.comment",
    "social.coves.community.subscription",
    "social.coves.feed.vote",
)
SCOPE = " ".join(("atproto", *(f"repo:{c}" for c in WRITE_COLLECTIONS), "blob:image/*"))

CALLBACK_PATH = "/oauth/callback"
METADATA_PATH = "/oauth-client-metadata.json"
JWKS_PATH = "/oauth-client-keys.json"
CLIENT_NAME = "Coves"


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    redirect_uri: str
    scope: str
    public_url: str
    key: SigningKey | None = None  # set for the confidential client
    kid: str | None = None
    # Earlier keys by kid: still published, and used for the sessions started with
    # them (an authorization server refuses a refresh signed with another key).
    old_keys: tuple[tuple[str, SigningKey], ...] = ()

    @property
    def confidential(self) -> bool:
        return self.key is not None

    @property
    def loopback(self) -> bool:
        return self.key is None

    def metadata(self) -> dict[str, Any]:
        """The client metadata document (what ``client_id`` dereferences to)."""
        doc: dict[str, Any] = {
            "client_id": self.client_id,
            "client_name": CLIENT_NAME,
            "application_type": "web" if self.confidential else "native",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": [self.redirect_uri],
            "scope": self.scope,
            "dpop_bound_access_tokens": True,
        }
        if self.confidential:
            doc["client_uri"] = self.public_url
            doc["token_endpoint_auth_method"] = "private_key_jwt"  # noqa: S105
            doc["token_endpoint_auth_signing_alg"] = "ES256"  # noqa: S105
            doc["jwks_uri"] = self.public_url + JWKS_PATH
        else:
            doc["token_endpoint_auth_method"] = "none"  # noqa: S105
        return doc

    def _keys(self) -> list[tuple[str, SigningKey]]:
        if self.key is None or self.kid is None:
            return []
        return [(self.kid, self.key), *self.old_keys]

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**key.public_jwk, "kid": kid, "alg": "ES256", "use": "sig"}
                for kid, key in self._keys()
            ]
        }

    def has_key(self, kid: str | None) -> bool:
        """Whether a session started with ``kid`` can still authenticate."""
        if self.key is None:
            return True  # a public client never signs
        return kid is None or any(k == kid for k, _ in self._keys())

    def auth_params(self, issuer: str, kid: str | None = None) -> dict[str, str]:
        """Client authentication for a PAR, token or revocation request to ``issuer``,
        signed with ``kid`` (the key the session started with; default the current one)."""
        params = {"client_id": self.client_id}
        keys = dict(self._keys())
        if keys:
            use = kid if kid in keys else self.kid
            assert use is not None
            params["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            params["client_assertion"] = client_assertion(keys[use], use, self.client_id, issuer)
        return params


def _loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_client(settings: Settings) -> OAuthClient:
    """The client this configuration describes (production refuses the loopback form
    and a missing key in ``coves.config``)."""
    public_url = settings.appview_public_url.rstrip("/")
    parts = urlsplit(public_url)
    if not settings.is_production and _loopback_host(parts.hostname):
        # The loopback convention: redirect to an IP literal (never "localhost"),
        # and the client id carries the redirect URI and scope.
        port = parts.port or settings.port
        host = "[::1]" if parts.hostname == "::1" else "127.0.0.1"
        redirect = f"http://{host}:{port}{CALLBACK_PATH}"
        client_id = "http://localhost?" + urlencode({"redirect_uri": redirect, "scope": SCOPE})
        return OAuthClient(client_id, redirect, SCOPE, f"http://{host}:{port}")
    if settings.oauth_client_private_key is not None:
        key = SigningKey.from_hex(settings.oauth_client_private_key.reveal())
    else:
        key = SigningKey.generate()
        log.warning(
            "OAUTH_CLIENT_PRIVATE_KEY unset: using a key generated for this process only; "
            "sessions will not refresh after a restart"
        )
    kid = key.jkt[:16]
    old = tuple(
        (old_key.jkt[:16], old_key)
        for old_key in (SigningKey.from_hex(s.reveal()) for s in settings.oauth_client_old_keys)
        if old_key.jkt != key.jkt
    )
    return OAuthClient(
        public_url + METADATA_PATH, public_url + CALLBACK_PATH, SCOPE, public_url, key, kid, old
    )
