"""The app's Authenticator: picks a verifier from the Authorization header.

``Bearer`` carries either a service-auth JWT (``typ: JWT``) or an OAuth
access token not bound to a key; ``DPoP`` carries a key-bound access token
plus its proof. Anything else is refused rather than ignored, so a client
with broken credentials learns it instead of silently browsing anonymously.
"""

from __future__ import annotations

from typing import Protocol

from coves.atproto.syntax import is_valid_did
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.auth.jwt import CompactJWT, parse_jwt
from coves.auth.service_auth import ServiceAuthVerifier
from coves.logs import get_logger

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
        skip_verify: bool = False,
        api_keys: ApiKeyVerifier | None = None,
    ) -> None:
        self._service_auth = service_auth
        self._oauth = oauth
        self._skip_verify = skip_verify
        self._api_keys = api_keys

    async def authenticate(self, request: AuthInput) -> Viewer | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
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
