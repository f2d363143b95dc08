"""Users' OAuth sessions: loading, lazy refresh, sign-out.

Access tokens are short-lived; a session is refreshed lazily, before a
write when its token is about to expire or after the PDS refused it. One
refresh per session in the deployment at a time (``coves.single_refresh``: a
per-session lock in this process, a lease across processes; concurrent
writes wait for the one refresh and use its result). Refresh tokens rotate,
so the new one is stored before the lease is released. A grant
the authorization server refuses for good deletes the session: the client
gets 401 ``SessionExpired`` and must sign in again.
"""

from __future__ import annotations

from dataclasses import replace

from coves import clock
from coves.logs import get_logger
from coves.oauth.discovery import Discovery
from coves.oauth.errors import session_expired
from coves.oauth.grants import GrantRefused, Grants
from coves.oauth.store import OAuthStore, UserSession
from coves.single_refresh import RefreshBusy, SingleRefresh

log = get_logger(__name__)

REFRESH_MARGIN = 60.0  # refresh when the access token has less than this left
SCOPE = "oauth_session"  # the refresh_leases scope; keys are session ids


class SessionManager:
    def __init__(
        self,
        store: OAuthStore,
        discovery: Discovery,
        grants: Grants,
        *,
        session_ttl: float,
        single: SingleRefresh,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self._store = store
        self._discovery = discovery
        self._grants = grants
        self.session_ttl = session_ttl
        self.refresh_margin = refresh_margin
        self._single = single
        self.refreshes = 0  # performed by this process (tests and metrics read it)

    async def get(self, session_id: str) -> UserSession | None:
        return await self._store.session(session_id)

    async def usable(self, session_id: str) -> UserSession:
        """The session with an access token good for the next request."""
        session = await self._store.session(session_id)
        if session is None:
            raise session_expired()
        if session.access_expires_at - clock.wall_now() > self.refresh_margin:
            return session
        return await self.refresh(session_id, stale_access_token=session.access_token)

    async def refresh(self, session_id: str, *, stale_access_token: str) -> UserSession:
        """Replace ``stale_access_token``; a no-op when someone already did."""

        async def done() -> UserSession | None:
            current = await self._store.session(session_id)
            if current is None:
                raise session_expired()
            return current if current.access_token != stale_access_token else None

        async def perform() -> UserSession:
            current = await self._store.session(session_id)
            if current is None:
                raise session_expired()
            return await self._perform(current)

        try:
            return await self._single.run(session_id, done=done, refresh=perform)
        except RefreshBusy:
            raise session_expired("your session could not be refreshed; sign in again") from None

    async def _perform(self, session: UserSession) -> UserSession:
        try:
            server = await self._discovery.auth_server(session.issuer)
            tokens = await self._grants.refresh(
                server, session.dpop_key, session.refresh_token, session.client_kid
            )
        except GrantRefused:
            log.info("session refresh refused; signing out", did=session.did)
            await self._store.delete_session(session.session_id)
            raise session_expired() from None
        if tokens.sub != session.did:
            await self._store.delete_session(session.session_id)
            raise session_expired("the authorization server changed the session's account")
        fresh = replace(
            session,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            scope=tokens.scope,
            access_expires_at=tokens.access_expires_at,
            expires_at=clock.wall_now() + self.session_ttl,
        )
        if not await self._store.store_refresh(fresh):
            raise session_expired()  # signed out while refreshing
        self.refreshes += 1
        log.info("session refreshed", did=session.did)
        return fresh

    async def sign_out(self, session_id: str) -> bool:
        """Revoke at the authorization server (best effort) and delete the session."""
        session = await self._store.session(session_id)
        deleted = await self._store.delete_session(session_id)
        if session is not None:
            try:
                server = await self._discovery.auth_server(session.issuer)
            except Exception:
                log.info("could not reach the authorization server to revoke", did=session.did)
                return deleted
            revoked = await self._grants.revoke(
                server, session.dpop_key, session.refresh_token, session.client_kid
            )
            log.info("signed out", did=session.did, revoked_upstream=revoked)
        return deleted
