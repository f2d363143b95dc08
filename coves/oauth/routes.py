"""The sign-in HTTP surface (not XRPC): login, callback, session probe, refresh, logout.

Paths, parameters, cookie and response fields are what the real web and
mobile clients use (reference: coves-clients-and-upstream §8). Every answer
is ``Cache-Control: no-store``; errors are the XRPC error body. Redirects go
only to allowlisted targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import orjson
from quart import Response, request
from quart_trio import QuartTrio

from coves.auth.base import AuthFailure, AuthInput
from coves.auth.session import COOKIE_NAME, cookie_value, same_origin
from coves.context import AppContext
from coves.db.queries import identity as identity_q
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.oauth.client import CALLBACK_PATH, JWKS_PATH, METADATA_PATH
from coves.oauth.errors import OAuthError
from coves.oauth.flow import LoginFailed, binding_hash
from coves.oauth.jose import random_token
from coves.oauth.service import OAuthService
from coves.oauth.store import REQUEST_TTL, PendingLogin, UserSession
from coves.oauth.tokens import InvalidSessionToken
from coves.read.views.blobs import BlobUrls
from coves.xrpc.ratelimit import RateLimiter, client_address, rate_limit_headers

log = get_logger(__name__)

BINDING_COOKIE = "coves_oauth_binding"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_IDENTIFIER = 2048


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status=status,
        headers={**NO_STORE, **(headers or {})},
        content_type="application/json",
    )


def _error(err: XRPCError) -> Response:
    return _json(err.body(), err.status, err.headers)


def _redirect(location: str) -> Response:
    return Response("", status=302, headers={**NO_STORE, "Location": location})


def _with_params(target: str, params: Mapping[str, str]) -> str:
    separator = "&" if "?" in target else "?"
    return target + separator + urlencode(params)


def register_oauth_routes(app: QuartTrio, ctx: AppContext, limiter: RateLimiter) -> None:
    oauth: OAuthService | None = ctx.oauth
    if oauth is None:
        return
    settings = ctx.settings
    blobs = BlobUrls(settings.blob_url_template)

    def limited(class_name: str) -> Response | None:
        client = client_address(request.remote_addr, request.headers.get, settings.trusted_proxies)
        decision = limiter.check(class_name, client)
        if decision.allowed:
            return None
        err = XRPCError(
            429,
            "RateLimitExceeded",
            "too many sign-in requests; retry later",
            headers=rate_limit_headers(decision, refused=True),
        )
        return _error(err)

    def set_session_cookie(response: Response, token: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=max_age,
            path="/",
            secure=oauth.cookie_secure,
            httponly=True,
            samesite="Lax",
        )

    def presented_token() -> tuple[str | None, bool]:
        """(token, came from the cookie)."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return cookie_value(request.headers, COOKIE_NAME), True

    async def authenticated(method: str) -> tuple[str, str]:
        """(did, session_id) of the caller's session, or XRPCError 401/403."""
        token, from_cookie = presented_token()
        if token is None:
            raise XRPCError(401, "AuthenticationRequired", "sign in first")
        auth_input = AuthInput(
            http_method=method,
            url=oauth.client.public_url + request.path,
            nsid="",
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        try:
            viewer = await oauth.verifier.verify(token, auth_input, from_cookie=from_cookie)
        except AuthFailure as failure:
            raise XRPCError(
                failure.status,
                failure.error if failure.status != 401 else "AuthenticationRequired",
                failure.message,
                headers={"WWW-Authenticate": failure.www_authenticate},
            ) from None
        assert viewer.session_id is not None
        return viewer.did, viewer.session_id

    # -- who we are ---------------------------------------------------------------
    @app.route(METADATA_PATH, methods=["GET"])
    async def client_metadata() -> Response:
        return _json(oauth.client.metadata(), headers={"Cache-Control": "public, max-age=600"})

    @app.route(JWKS_PATH, methods=["GET"])
    async def client_keys() -> Response:
        return _json(oauth.client.jwks(), headers={"Cache-Control": "public, max-age=600"})

    # -- starting a sign-in -------------------------------------------------------
    def identifier_param() -> str:
        handle = (request.args.get("handle") or "").strip()
        if not handle or len(handle) > MAX_IDENTIFIER:
            raise XRPCError(400, "InvalidRequest", "handle (a handle or DID) is required")
        return handle

    @app.route("/oauth/login", methods=["GET"])
    async def web_login() -> Response:
        if (refused := limited("oauth_login")) is not None:
            return refused
        try:
            identifier = identifier_param()
            requested = request.args.get("redirect_uri") or request.args.get("redirect")
            target = oauth.web_target(requested)
            if target is None:
                raise XRPCError(400, "InvalidRedirect", "redirect_uri is not on the allowlist")
            client_state = request.args.get("state")
            if client_state is not None and len(client_state) > 512:
                raise XRPCError(400, "InvalidRequest", "state is too long")
            binding = random_token(32)
            url = await oauth.flow.start(
                identifier,
                kind="web",
                redirect_target=target,
                client_state=client_state,
                browser_binding=binding_hash(binding),
            )
        except XRPCError as err:
            return _error(err)
        response = _redirect(url)
        response.set_cookie(
            BINDING_COOKIE,
            binding,
            max_age=int(REQUEST_TTL),
            path=CALLBACK_PATH,
            secure=oauth.cookie_secure,
            httponly=True,
            samesite="Lax",
        )
        return response

    @app.route("/oauth/mobile/login", methods=["GET"])
    async def mobile_login() -> Response:
        if (refused := limited("oauth_login")) is not None:
            return refused
        try:
            identifier = identifier_param()
            target = oauth.mobile_target(request.args.get("redirect_uri"))
            if target is None:
                raise XRPCError(400, "InvalidRedirect", "redirect_uri is not on the allowlist")
            url = await oauth.flow.start(identifier, kind="mobile", redirect_target=target)
        except XRPCError as err:
            return _error(err)
        return _redirect(url)

    # -- finishing it ---------------------------------------------------------------
    def failed_redirect(login: PendingLogin, err: XRPCError) -> Response:
        params = {"error": err.error, "error_description": err.message}
        if login.kind == "web" and login.client_state is not None:
            params["state"] = login.client_state
        response = _redirect(_with_params(login.redirect_target, params))
        if login.kind == "web":
            response.delete_cookie(BINDING_COOKIE, path=CALLBACK_PATH)
        return response

    def signed_in(session: UserSession, login: PendingLogin) -> Response:
        token = oauth.tokens.issue(session.did, session.session_id, not_after=session.expires_at)
        if login.kind == "mobile":
            return _redirect(
                _with_params(
                    login.redirect_target,
                    {
                        "token": token,
                        "did": session.did,
                        "session_id": session.session_id,
                        "handle": session.handle,
                    },
                )
            )
        target = login.redirect_target
        if login.client_state is not None:
            target = _with_params(target, {"state": login.client_state})
        response = _redirect(target)
        set_session_cookie(response, token, int(oauth.tokens.ttl))
        response.delete_cookie(BINDING_COOKIE, path=CALLBACK_PATH)
        return response

    @app.route(CALLBACK_PATH, methods=["GET"])
    async def callback() -> Response:
        if (refused := limited("oauth_login")) is not None:
            return refused
        params = {k: v for k, v in request.args.items()}
        binding = binding_hash(cookie_value(request.headers, BINDING_COOKIE))
        try:
            session, login = await oauth.flow.finish(params, browser_binding=binding)
        except LoginFailed as err:
            log.info("sign-in failed", why=err.error)
            if err.login is not None:
                return failed_redirect(err.login, err)
            return _error(err)
        except XRPCError as err:
            return _error(err)
        return signed_in(session, login)

    # -- the session ----------------------------------------------------------------
    @app.route("/api/me", methods=["GET"])
    async def me() -> Response:
        try:
            did, session_id = await authenticated("GET")
        except XRPCError as err:
            return _error(err)
        session = await oauth.sessions.get(session_id)
        if session is None:
            return _error(XRPCError(401, "AuthenticationRequired", "sign in again"))
        body: dict[str, Any] = {"did": did, "handle": session.handle}
        user = await identity_q.user_by_did(ctx.db, did)
        if user is not None:
            if user.get("handle"):
                body["handle"] = user["handle"]
            avatar = blobs.url(user["avatar"], did, user.get("pds_url")) if user["avatar"] else None
            if avatar:
                body["avatar"] = avatar
        return _json(body)

    @app.route("/oauth/refresh", methods=["POST"])
    async def refresh() -> Response:
        if (refused := limited("oauth_refresh")) is not None:
            return refused
        try:
            try:  # orjson, not get_json: that one lets invalid UTF-8 escape as a 500
                body = orjson.loads(await request.get_data(cache=False))
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                raise XRPCError(400, "InvalidRequest", "send {did, session_id, sealed_token}")
            did, session_id, sealed = (body.get(k) for k in ("did", "session_id", "sealed_token"))
            if not all(isinstance(v, str) and v for v in (did, session_id, sealed)):
                raise XRPCError(
                    400, "InvalidRequest", "did, session_id and sealed_token are required"
                )
            assert isinstance(sealed, str)
            try:
                claims = oauth.tokens.open(sealed, allow_expired=True)
            except InvalidSessionToken as exc:
                raise XRPCError(401, "AuthenticationRequired", exc.message) from None
            if claims.did != did or claims.session_id != session_id:
                raise XRPCError(401, "AuthenticationRequired", "the token is for another session")
            current = await oauth.sessions.get(session_id)
            if current is None or current.did != did:
                raise XRPCError(401, "SessionExpired", "your session has ended; sign in again")
            fresh = await oauth.sessions.refresh(
                session_id, stale_access_token=current.access_token
            )
        except XRPCError as err:
            return _error(err)
        token = oauth.tokens.issue(fresh.did, fresh.session_id, not_after=fresh.expires_at)
        return _json(
            {
                "sealed_token": token,
                "did": fresh.did,
                "session_id": fresh.session_id,
                "handle": fresh.handle,
            }
        )

    @app.route("/oauth/logout", methods=["POST"])
    async def logout() -> Response:
        if (refused := limited("oauth_logout")) is not None:
            return refused
        token, from_cookie = presented_token()
        if token is None:
            return _error(XRPCError(401, "AuthenticationRequired", "no session to sign out of"))
        if from_cookie and not same_origin(request.headers, oauth.verifier.allowed_origins):
            return _error(XRPCError(403, "Forbidden", "cross-site sign-out refused"))
        try:
            claims = oauth.tokens.open(token, allow_expired=True)
        except InvalidSessionToken as exc:
            return _error(XRPCError(401, "AuthenticationRequired", exc.message))
        current = await oauth.sessions.get(claims.session_id)
        if current is not None and current.did == claims.did:
            await oauth.sessions.sign_out(claims.session_id)
        response = _json({"success": True})
        response.delete_cookie(COOKIE_NAME, path="/")
        return response


__all__ = ["OAuthError", "register_oauth_routes"]
