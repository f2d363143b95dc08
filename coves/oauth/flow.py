"""The sign-in flow: from ``/oauth/login`` to a stored session at ``/oauth/callback``.

Start: resolve the account, find its authorization server, push the
authorization request (PKCE S256, ``state``, a fresh DPoP key, the account
as ``login_hint``) and send the browser to the authorization endpoint.
Finish: the ``state`` must name a sign-in we started (single use, ten
minutes, bound to the browser for web sign-ins), ``iss`` must be the server
we sent the user to, the code is exchanged with the same DPoP key, ``sub``
must be the account the sign-in was for, and that account's PDS must still
name this authorization server. Only then is a session stored.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from coves import clock
from coves.base64url import b64url_decode
from coves.logs import get_logger
from coves.oauth.client import OAuthClient
from coves.oauth.discovery import Discovery
from coves.oauth.errors import OAuthError, upstream
from coves.oauth.grants import Grants, TokenSet
from coves.oauth.jose import SigningKey, pkce_pair, random_token
from coves.oauth.store import REQUEST_TTL, OAuthStore, PendingLogin, UserSession

log = get_logger(__name__)

CONFIDENTIAL_SESSION_TTL = 180 * 86_400.0
PUBLIC_SESSION_TTL = 14 * 86_400.0
MAX_PARAM = 2048


class LoginFailed(OAuthError):
    """The callback cannot complete; ``login`` says where to send the user, if known."""

    def __init__(
        self, status: int, error: str, message: str, login: PendingLogin | None = None
    ) -> None:
        super().__init__(status, error, message)
        self.login = login


def binding_hash(cookie_value: str | None) -> bytes | None:
    if not cookie_value:
        return None
    return hashlib.sha256(cookie_value.encode("utf-8", "replace")).digest()


class LoginFlow:
    def __init__(
        self,
        client: OAuthClient,
        discovery: Discovery,
        grants: Grants,
        store: OAuthStore,
    ) -> None:
        self.client = client
        self._discovery = discovery
        self._grants = grants
        self._store = store

    def session_ttl(self) -> float:
        return CONFIDENTIAL_SESSION_TTL if self.client.confidential else PUBLIC_SESSION_TTL

    async def start(
        self,
        identifier: str,
        *,
        kind: str,
        redirect_target: str,
        client_state: str | None = None,
        browser_binding: bytes | None = None,
    ) -> str:
        """Push the authorization request; return the URL to send the browser to."""
        identity = await self._discovery.identity(identifier)
        assert identity.pds_url is not None
        issuer = await self._discovery.issuer_for_pds(identity.pds_url)
        server = await self._discovery.auth_server(issuer)
        state = random_token(32)
        verifier, challenge = pkce_pair()
        dpop_key = SigningKey.generate()
        hint = identity.handle if identity.handle_verified else identity.did
        client_kid = self.client.kid
        request_uri, _ = await self._grants.par(
            server,
            dpop_key,
            {
                "response_type": "code",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": state,
                "redirect_uri": self.client.redirect_uri,
                "scope": self.client.scope,
                "login_hint": hint,
            },
            client_kid,
        )
        await self._store.save_login(
            PendingLogin(
                state=state,
                issuer=issuer,
                did=identity.did,
                handle=identity.handle,
                pds_url=identity.pds_url,
                kind=kind,
                redirect_target=redirect_target,
                client_state=client_state,
                browser_binding=browser_binding,
                verifier=verifier,
                dpop_key=dpop_key,
                expires_at=clock.wall_now() + REQUEST_TTL,
                client_kid=client_kid,
            )
        )
        log.info("sign-in started", did=identity.did, issuer=issuer, kind=kind)
        query = urlencode({"client_id": self.client.client_id, "request_uri": request_uri})
        return f"{server.authorization_endpoint}?{query}"

    async def finish(
        self, params: dict[str, str], *, browser_binding: bytes | None
    ) -> tuple[UserSession, PendingLogin]:
        state = params.get("state", "")
        # Every state this flow issues is a random_token (base64url); anything else,
        # a NUL among it, is refused before the store is asked.
        if not state or len(state) > MAX_PARAM or not _is_base64url(state):
            raise LoginFailed(400, "InvalidState", "the sign-in callback has no state")
        login = await self._store.take_login(state)
        if login is None:
            raise LoginFailed(
                400, "InvalidState", "unknown or expired sign-in; start the sign-in again"
            )
        if login.kind == "web" and not (
            login.browser_binding is not None
            and browser_binding is not None
            and hmac.compare_digest(login.browser_binding, browser_binding)
        ):
            raise LoginFailed(
                400, "InvalidState", "this sign-in was started in another browser", login
            )
        if params.get("iss") != login.issuer:
            raise LoginFailed(
                400, "InvalidIssuer", "the callback came from another authorization server", login
            )
        if "error" in params:
            code = params.get("error", "")[:100]
            status = 403 if code == "access_denied" else 400
            message = f"sign-in was not completed ({code})"
            raise LoginFailed(status, "AuthorizationDenied", message, login)
        code = params.get("code", "")
        if not code or len(code) > MAX_PARAM:
            raise LoginFailed(400, "InvalidRequest", "the sign-in callback has no code", login)
        try:
            server = await self._discovery.auth_server(login.issuer)
            tokens = await self._grants.exchange_code(
                server, login.dpop_key, code, login.verifier, login.client_kid
            )
            await self._check_subject(login, tokens)
        except LoginFailed:
            raise
        except OAuthError as exc:
            raise LoginFailed(exc.status, exc.error, exc.message, login) from None
        now = clock.wall_now()
        session = UserSession(
            session_id=random_token(24),
            did=tokens.sub,
            handle=login.handle,
            pds_url=login.pds_url,
            issuer=login.issuer,
            scope=tokens.scope,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            dpop_key=login.dpop_key,
            access_expires_at=tokens.access_expires_at,
            expires_at=now + self.session_ttl(),
            client_kid=login.client_kid,
        )
        await self._store.create_session(session)
        await self._store.remember_identity(session.did, session.handle, session.pds_url)
        log.info("signed in", did=session.did, issuer=session.issuer, kind=login.kind)
        return session, login

    async def _check_subject(self, login: PendingLogin, tokens: TokenSet) -> None:
        """``sub`` is the account we asked for, and its PDS names this authorization server."""
        server = await self._discovery.auth_server(login.issuer)
        if tokens.sub != login.did:
            await self._grants.revoke(
                server, login.dpop_key, tokens.refresh_token, login.client_kid
            )
            raise LoginFailed(
                403,
                "AccountMismatch",
                "the authorization server signed in a different account than requested",
                login,
            )
        identity = await self._discovery.identity(tokens.sub)
        assert identity.pds_url is not None
        if await self._discovery.issuer_for_pds(identity.pds_url) != login.issuer:
            await self._grants.revoke(
                server, login.dpop_key, tokens.refresh_token, login.client_kid
            )
            raise upstream("this authorization server is not the one the account's PDS names")


def _is_base64url(text: str) -> bool:
    try:
        b64url_decode(text)
    except ValueError:
        return False
    return True
