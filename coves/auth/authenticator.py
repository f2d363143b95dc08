"""The app's Authenticator: picks a verifier from the Authorization header.

``Bearer`` carries a Coves session token (``cvs2.``, from signing in
through Coves), a service-auth JWT (``typ: JWT``) or an OAuth access token
not bound to a key; ``DPoP`` carries a key-bound access token plus its
proof. Without an Authorization header, the ``coves_session`` cookie of the
web client is accepted. Anything else is refused rather than ignored, so a client
with broken credentials learns it instead of silently browsing anonymously.
"""

from __future__ import annotations

from typing import Protocol

from coves.atproto.syntax import is_valid_did
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.auth.jwt import CompactJWT, parse_jwt
from coves.auth.service_auth import ServiceAuthVerifier
from coves.auth.session import SessionVerifier, cookie_value
from coves.logs import get_logger
from coves.oauth.tokens import is_session_token

log = get_logger(__name__)

OAUTH_TYPES = {"at+jwt", "application/at+jwt"}
API_KEY_PREFIX = "ckapi_"


class ApiKeyVerifier(Protocol):
    async def authenticate(self, token: str, request: AuthInput) -> Viewer: ...


class OAuthVerifier(Protocol):
    async def verify_bearer(self, jwt: CompactJWT, token: str, request: AuthInput) -> Viewer: ...

    async def verify_dpop(self, jwt: CompactJWT, token: str, request: AuthInput) -> Viewer: ...


class CovesAuthenticator:
    def __init__(
        self,
        service_auth: ServiceAuthVerifier,
        oauth: OAuthVerifier | None = None,
        *,
        sessions: SessionVerifier | None = None,
        skip_verify: bool = False,
        api_keys: ApiKeyVerifier | None = None,
    ) -> None:
        self._service_auth = service_auth
        self._oauth = oauth
        self._sessions = sessions
        self._skip_verify = skip_verify
        self._api_keys = api_keys

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        if header is None:
            cookie = cookie_value(request.headers) if self._sessions is not None else None
            if cookie is None or self._sessions is None:
                return None
            return await self._sessions.verify(cookie, request, from_cookie=True)
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if not token or " " in token:
            raise AuthFailure("malformed", "Authorization header must be '<scheme> <token>'")
        scheme = scheme.lower()
        if scheme not in ("bearer", "dpop"):
            raise AuthFailure("bad_scheme", "use Bearer or DPoP authorization")
        if token.startswith(API_KEY_PREFIX):  # aggregator API keys (ckapi_...)
            if scheme != "bearer" or self._api_keys is None:
                raise AuthFailure("unsupported", "API keys are not accepted here")
            return await self._api_keys.authenticate(token, request)
        if scheme == "bearer" and is_session_token(token):
            if self._sessions is None:
                raise AuthFailure("unsupported", "session tokens are not accepted here")
            return await self._sessions.verify(token, request, from_cookie=False)
        jwt = parse_jwt(token)
        if self._skip_verify:
            return self._unverified(jwt)
        if scheme == "dpop":
            if self._oauth is None:
                raise AuthFailure("unknown_issuer", "OAuth access tokens are not accepted here")
            return await self._oauth.verify_dpop(jwt, token, request)
        typ = (jwt.typ or "").lower()
        if typ in OAUTH_TYPES:
            if self._oauth is None:
                raise AuthFailure("unknown_issuer", "OAuth access tokens are not accepted here")
            return await self._oauth.verify_bearer(jwt, token, request)
        return await self._service_auth.verify(jwt, request.nsid)

    def _unverified(self, jwt: CompactJWT) -> Viewer:
        """AUTH_SKIP_VERIFY (development only; refused in production by config)."""
        for claim in ("sub", "iss"):
            value = jwt.payload.get(claim)
            if isinstance(value, str) and is_valid_did(value.split("#", 1)[0]):
                did = value.split("#", 1)[0]
                log.warning(
                    "AUTH_SKIP_VERIFY: accepting an UNVERIFIED token; never use in production",
                    viewer=did,
                )
                return Viewer(did=did, method="unverified")
        raise AuthFailure("malformed", "token names no DID in sub or iss")
