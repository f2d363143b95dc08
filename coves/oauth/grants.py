"""Calls to the authorization server's endpoints: PAR, token, revocation.

Each is a DPoP-signed form POST with the client's authentication. Answers
are checked before anything is kept: the token type must be DPoP, the
subject a DID, the scope must include ``atproto``; refresh keeps the same
subject. Failures are sorted into "the grant is dead" (sign in again),
"the server is down" (503) and "the server answered nonsense" (502).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coves import clock
from coves.atproto.syntax import is_valid_did
from coves.logs import get_logger
from coves.net import FetchError, FetchResponse
from coves.oauth.client import OAuthClient
from coves.oauth.discovery import AuthServer
from coves.oauth.dpop import DpopClient
from coves.oauth.errors import OAuthError, session_expired, unavailable, upstream
from coves.oauth.jose import SigningKey

log = get_logger(__name__)

# Errors after which the grant will never work again.
DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    sub: str
    scope: str
    access_expires_at: float

    def __repr__(self) -> str:
        return f"TokenSet(sub={self.sub!r}, scope={self.scope!r})"


class GrantRefused(OAuthError):
    """The authorization server refused the grant for good (code or refresh token)."""


def _error_code(response: FetchResponse) -> str:
    try:
        body = response.json()
    except FetchError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return ""


def _check_answer(response: FetchResponse, what: str) -> dict[str, Any]:
    if response.status >= 500:
        raise unavailable(f"the authorization server failed the {what} (HTTP {response.status})")
    if response.status >= 400:
        code = _error_code(response)
        if code in DEAD_GRANT:
            raise GrantRefused(401, "SessionExpired", f"the authorization server refused: {code}")
        raise upstream(f"the authorization server refused the {what} ({code or response.status})")
    try:
        body = response.json()
    except FetchError:
        raise upstream(f"the {what} answer is not JSON") from None
    if not isinstance(body, dict):
        raise upstream(f"the {what} answer is not a JSON object")
    return body


def parse_token_response(body: dict[str, Any]) -> TokenSet:
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "dpop":
        raise upstream("the authorization server issued a token that is not DPoP-bound")
    access = body.get("access_token")
    refresh = body.get("refresh_token")
    sub = body.get("sub")
    scope = body.get("scope")
    expires_in = body.get("expires_in")
    if not isinstance(access, str) or not access:
        raise upstream("the token answer has no access_token")
    if not isinstance(refresh, str) or not refresh:
        raise upstream("the token answer has no refresh_token")
    if not isinstance(sub, str) or not is_valid_did(sub):
        raise upstream("the token answer's sub is not a DID")
    if not isinstance(scope, str) or "atproto" not in scope.split():
        raise upstream("the token answer's scope lacks atproto")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = 300  # unknown: treat as short-lived and refresh early
    return TokenSet(access, refresh, sub, scope, clock.wall_now() + float(expires_in))


class Grants:
    def __init__(self, client: OAuthClient, dpop: DpopClient) -> None:
        self.client = client
        self._dpop = dpop

    async def _post(
        self,
        url: str,
        params: dict[str, str],
        server: AuthServer,
        key: SigningKey,
        what: str,
        *,
        client_kid: str | None,
    ) -> FetchResponse:
        if not self.client.has_key(client_kid):
            # The client key this session started with is no longer configured: the
            # authorization server would refuse anything signed with another.
            raise GrantRefused(401, "SessionExpired", "the session's client key was retired")
        try:
            return await self._dpop.post_form(
                url, lambda: {**params, **self.client.auth_params(server.issuer, client_kid)}, key
            )
        except FetchError as exc:
            log.info("authorization server unreachable", issuer=server.issuer, why=exc.reason)
            raise unavailable(f"the authorization server is unreachable for the {what}") from None

    async def par(
        self, server: AuthServer, key: SigningKey, params: dict[str, str], client_kid: str | None
    ) -> tuple[str, int]:
        """Push the authorization request; returns (request_uri, expires_in)."""
        response = await self._post(
            server.par_endpoint, params, server, key, "sign-in request", client_kid=client_kid
        )
        body = _check_answer(response, "sign-in request")
        request_uri = body.get("request_uri")
        if not isinstance(request_uri, str) or not request_uri:
            raise upstream("the authorization server returned no request_uri")
        expires_in = body.get("expires_in")
        return request_uri, int(expires_in) if isinstance(expires_in, int) else 60

    async def exchange_code(
        self,
        server: AuthServer,
        key: SigningKey,
        code: str,
        verifier: str,
        client_kid: str | None,
    ) -> TokenSet:
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client.redirect_uri,
            "code_verifier": verifier,
        }
        response = await self._post(
            server.token_endpoint, params, server, key, "code exchange", client_kid=client_kid
        )
        return parse_token_response(_check_answer(response, "code exchange"))

    async def refresh(
        self, server: AuthServer, key: SigningKey, refresh_token: str, client_kid: str | None
    ) -> TokenSet:
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        response = await self._post(
            server.token_endpoint, params, server, key, "token refresh", client_kid=client_kid
        )
        return parse_token_response(_check_answer(response, "token refresh"))

    async def revoke(
        self, server: AuthServer, key: SigningKey, token: str, client_kid: str | None
    ) -> bool:
        """Best effort: True when the server confirmed the revocation."""
        if server.revocation_endpoint is None:
            return False
        try:
            response = await self._post(
                server.revocation_endpoint,
                {"token": token},
                server,
                key,
                "revocation",
                client_kid=client_kid,
            )
        except OAuthError:
            return False
        return 200 <= response.status < 300


__all__ = ["GrantRefused", "Grants", "TokenSet", "session_expired"]
