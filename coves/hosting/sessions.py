"""Keeping a hosted community's PDS session usable.

A community writes with a bearer access JWT (about 2 hours) that a refresh
JWT (about 90 days, rotated on each use) renews. :class:`CommunitySessions`
is the one place that renews them, for the refresher child and for writes:

- **Lazy**: before a write, a token expiring within ``margin`` is renewed
  first; a write answered 401 / ``ExpiredToken`` / ``InvalidToken`` renews and
  is re-sent once (:class:`CommunityAuth`, a :class:`~coves.pds.auth.PdsAuth`).
- **Single-flight**: one renewal per community at a time in the deployment
  (``coves.single_refresh``: a lock per community in this process, a lease
  across the API workers and the ingest process). Waiters re-read the row and
  reuse the winner's session: the PDS rotates the refresh JWT on use, so a
  second renewal with the old one would fail and fall back to a password
  login. The stored refresh token stays a compare-and-swap guard.
- **Password fallback**: a dead refresh token (expired, revoked, rotated away)
  is replaced by a login with the community's sealed password. When that fails
  too the community is *locked out* (``locked_out``, shown in ``_health``).
- A PDS that is down raises 503 ``PdsUnavailable`` and counts a failure; the
  refresher's breaker decides when to try again.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from coves import clock
from coves.db import Database
from coves.db.queries import community_accounts as q
from coves.errors import XRPCError
from coves.hosting.credentials import Credentials, jwt_expiry, open_row, seal
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.pds.auth import BearerAuth
from coves.pds.client import PdsConnections, PdsSession
from coves.pds.errors import PdsAuthError, PdsUnavailable
from coves.secrets import SecretBox
from coves.single_refresh import RefreshBusy, SingleRefresh

log = get_logger(__name__)

REFRESH_MARGIN_SECONDS = 300.0  # renew before a write when the token expires sooner
SCOPE = "community_session"  # the refresh_leases scope; keys are community names
RENEW_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})


class LockedOut(XRPCError):
    """Neither the refresh token nor the password opens a session any more."""

    def __init__(self, name: str) -> None:
        super().__init__(
            502,
            "UpstreamFailure",
            f"community {name}: its PDS session cannot be renewed (locked out); "
            "an operator must reset its credentials",
        )


class CommunitySessions:
    def __init__(
        self,
        db: Database,
        box: Callable[[], SecretBox],
        connections: PdsConnections,
        *,
        metrics: Metrics,
        margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._db = db
        self._box = box
        self._connections = connections
        self.margin = margin
        self.single = SingleRefresh(db, SCOPE)
        self._refreshes = metrics.counter(
            "coves_community_token_refresh_total",
            "community PDS session renewals by outcome",
            ["outcome"],
        )

    # ---- reading ------------------------------------------------------------------

    async def load(self, name: str) -> Credentials:
        return await self._load(name, ("active", "account_created"))

    async def load_deleted(self, name: str) -> Credentials:
        """A soft-deleted community's credentials (for a restore)."""
        return await self._load(name, ("deleted",))

    async def _load(self, name: str, states: tuple[str, ...]) -> Credentials:
        row = await q.by_name(self._db, name)
        if row is None or row["did"] is None or row["state"] not in states:
            raise XRPCError(404, "NotFound", f"community {name} is not hosted here")
        return open_row(self._box(), row)

    async def load_did(self, did: str) -> Credentials:
        row = await q.by_did(self._db, did)
        if row is None or row["state"] not in ("active", "account_created"):
            raise XRPCError(404, "NotFound", "community is not hosted on this instance")
        return open_row(self._box(), row)

    def auth(self, creds: Credentials) -> CommunityAuth:
        return CommunityAuth(self, creds)

    def needs_refresh(self, creds: Credentials, margin: float | None = None) -> bool:
        if creds.access is None or creds.access_expires_at is None:
            return True
        left = (creds.access_expires_at - clock.utcnow()).total_seconds()
        return left < (self.margin if margin is None else margin)

    # ---- renewing ------------------------------------------------------------------

    async def fresh(self, creds: Credentials, *, force: bool = False) -> Credentials:
        """``creds`` with a usable access token, renewing it when needed (or ``force``)."""
        if not force and not self.needs_refresh(creds):
            return creds

        async def done() -> Credentials | None:
            current = await self.load(creds.name)
            if current.refresh_sealed != creds.refresh_sealed and not self.needs_refresh(current):
                return current  # renewed by someone else while we waited
            if not force and not self.needs_refresh(current):
                return current
            return None

        async def renew() -> Credentials:
            return await self._renew(await self.load(creds.name))

        try:
            return await self.single.run(creds.name, done=done, refresh=renew)
        except RefreshBusy:
            raise PdsUnavailable(
                f"community {creds.name}: another process is still renewing its PDS session",
                retry_after=5.0,
            ) from None

    async def refresh(self, name: str) -> Credentials:
        """Renew ``name``'s session now (the refresher, ``coves communities refresh``)."""
        return await self.fresh(await self.load(name), force=True)

    async def _renew(self, creds: Credentials) -> Credentials:
        pds = self._connections.client(creds.pds_url)
        outcome = "refreshed"
        try:
            try:
                if creds.refresh is None:
                    raise PdsAuthError("no refresh token stored", pds_status=401, pds_error=None)
                session = await pds.refresh_session(BearerAuth(creds.refresh.reveal()))
            except PdsAuthError as dead:
                log.info(
                    "community refresh token refused; logging in with the password",
                    community=creds.name,
                    error=dead.pds_error,
                )
                outcome = "password"
                session = await pds.create_session(identifier=creds.did, password=creds.password)
        except PdsAuthError as exc:
            self._refreshes.labels("locked_out").inc()
            log.error("community locked out of its PDS session", community=creds.name)
            await q.note_refresh_failure(
                self._db, creds.name, f"locked out: {exc.pds_error}", locked_out=True
            )
            raise LockedOut(creds.name) from None
        except PdsUnavailable as exc:
            self._refreshes.labels("unavailable").inc()
            await q.note_refresh_failure(self._db, creds.name, exc.message[:300], locked_out=False)
            raise
        except XRPCError as exc:
            self._refreshes.labels("error").inc()
            await q.note_refresh_failure(self._db, creds.name, exc.message[:300], locked_out=False)
            raise
        if session.did != creds.did:
            self._refreshes.labels("error").inc()
            raise XRPCError(502, "UpstreamFailure", "the PDS answered for another account")
        self._refreshes.labels(outcome).inc()
        return await self.store(creds, session)

    async def store(self, creds: Credentials, session: PdsSession) -> Credentials:
        """Persist a new session (compare-and-swap on the stored refresh token)."""
        box = self._box()
        # A compare-and-swap: if another process renewed first, its session is kept
        # (ours is valid too, but one is enough) and read back below.
        await q.store_session(
            self._db,
            creds.name,
            expected_refresh=creds.refresh_sealed,
            access_sealed=seal(box, creds.name, "access_sealed", session.access_jwt),
            refresh_sealed=seal(box, creds.name, "refresh_sealed", session.refresh_jwt),
            access_expires_at=jwt_expiry(session.access_jwt),
            refresh_expires_at=jwt_expiry(session.refresh_jwt),
        )
        return await self.load(creds.name)


class CommunityAuth:
    """Bearer auth with a community's access token, renewed lazily and on 401.

    See :mod:`coves.pds.auth` for the strategy contract.
    """

    def __init__(self, sessions: CommunitySessions, creds: Credentials) -> None:
        self._sessions = sessions
        self.creds = creds
        self._renewed_after_refusal = False

    def __repr__(self) -> str:
        return f"CommunityAuth({self.creds.name!r})"

    async def authorize(self, request: httpx.Request) -> None:
        self.creds = await self._sessions.fresh(self.creds)
        assert self.creds.access is not None
        request.headers["Authorization"] = f"Bearer {self.creds.access.reveal()}"

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        refused = response.status_code == 401 or error in RENEW_ERRORS
        if not refused or self._renewed_after_refusal:
            return False
        self._renewed_after_refusal = True
        self.creds = await self._sessions.fresh(self.creds, force=True)
        return True
