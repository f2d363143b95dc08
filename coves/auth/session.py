"""Callers signed in through Coves: the sealed session token, as Bearer or cookie.

The token is opened (authentic, unexpired), then the session it names must
still exist for the DID it names: logout or a refused refresh deletes the
row, and with it every token of that session. A session cookie on a POST is
accepted only from a same-origin page (``Origin`` on the allowlist, or
``Sec-Fetch-Site: same-origin``); with SameSite=Lax this is belt and braces
against cross-site request forgery. Bearer tokens need no such check: a
browser never attaches them by itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from http.cookies import CookieError, SimpleCookie
from typing import Any

from coves import clock
from coves.auth.base import AuthFailure, AuthInput, Viewer
from coves.oauth.tokens import InvalidSessionToken, SessionTokens

COOKIE_NAME = "coves_session"
SESSION_WWW = 'Bearer realm="coves", error="invalid_token"'

SessionLookup = Callable[[str], Awaitable[dict[str, Any] | None]]


def cookie_value(headers: dict[str, str] | Any, name: str = COOKIE_NAME) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def same_origin(headers: Any, allowed_origins: Collection[str]) -> bool:
    origin = headers.get("origin")
    if origin:
        return origin in allowed_origins
    return headers.get("sec-fetch-site") in ("same-origin", "none")


class SessionVerifier:
    def __init__(
        self, tokens: SessionTokens, lookup: SessionLookup, allowed_origins: Collection[str]
    ) -> None:
        self._tokens = tokens
        self._lookup = lookup
        self.allowed_origins = frozenset(allowed_origins)

    async def verify(self, token: str, request: AuthInput, *, from_cookie: bool) -> Viewer:
        cross_site = not same_origin(request.headers, self.allowed_origins)
        if from_cookie and request.http_method == "POST" and cross_site:
            raise AuthFailure(
                "csrf",
                "a session cookie is only accepted on requests from this site",
                status=403,
                error="Forbidden",
            )
        try:
            claims = self._tokens.open(token)
        except InvalidSessionToken as exc:
            raise AuthFailure(exc.reason, exc.message, SESSION_WWW) from None
        row = await self._lookup(claims.session_id)
        expires = row.get("expires_at") if row is not None else None
        if (
            row is None
            or row.get("did") != claims.did
            or not isinstance(expires, datetime)
            or expires <= clock.utcnow()
        ):
            raise AuthFailure(
                "session_ended",
                "your session has ended or was revoked; sign in again",
                SESSION_WWW,
            )
        return Viewer(did=claims.did, method="session", session_id=claims.session_id)
