"""Sign-ins in progress and user sessions, sealed at rest.

Everything secret (PKCE verifier, DPoP private keys, access and refresh
tokens) is sealed with ``SecretBox`` under ``ENCRYPTION_KEY``, the associated
data naming the row, so a sealed value copied into another row does not
open. Nothing here logs a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from coves import clock
from coves.atproto.syntax import INVALID_HANDLE
from coves.db import Database, Row
from coves.db.queries import identity as identity_q
from coves.db.queries import oauth as q
from coves.db.sealed import OAUTH_REQUESTS, OAUTH_SESSIONS
from coves.oauth.jose import SigningKey
from coves.secrets import SecretBox

REQUEST_TTL = 600.0


def request_context(state: str) -> str:
    return OAUTH_REQUESTS.context({"state": state})


def session_context(session_id: str) -> str:
    return OAUTH_SESSIONS.context({"session_id": session_id})


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class PendingLogin:
    state: str
    issuer: str
    did: str
    handle: str
    pds_url: str
    kind: str  # web | mobile
    redirect_target: str
    client_state: str | None
    browser_binding: bytes | None
    verifier: str
    dpop_key: SigningKey
    expires_at: float
    client_kid: str | None = None  # the client key the sign-in is authenticated with


@dataclass(frozen=True)
class UserSession:
    session_id: str
    did: str
    handle: str
    pds_url: str
    issuer: str
    scope: str
    access_token: str
    refresh_token: str
    dpop_key: SigningKey
    access_expires_at: float
    expires_at: float
    client_kid: str | None = None  # refreshes must be signed with this client key

    def __repr__(self) -> str:  # never show tokens or keys
        return f"UserSession(session_id={self.session_id!r}, did={self.did!r})"


class OAuthStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    # -- sign-ins in progress -------------------------------------------------
    async def save_login(self, login: PendingLogin) -> None:
        secrets = orjson.dumps({"verifier": login.verifier, "dpop_key": login.dpop_key.to_hex()})
        await q.insert_request(
            self._db,
            state=login.state,
            issuer=login.issuer,
            did=login.did,
            handle=login.handle,
            pds_url=login.pds_url,
            kind=login.kind,
            redirect_target=login.redirect_target,
            client_state=login.client_state,
            browser_binding=login.browser_binding,
            client_kid=login.client_kid,
            secrets=self._box.seal(secrets, context=request_context(login.state)),
            expires_at=_at(login.expires_at),
            now=clock.utcnow(),
        )

    async def take_login(self, state: str) -> PendingLogin | None:
        """The sign-in ``state`` names, removed (single use); None if unknown or expired."""
        row = await q.take_request(self._db, state)
        if row is None or row["expires_at"] <= clock.utcnow():
            return None
        secrets = orjson.loads(
            self._box.open(bytes(row["secrets_sealed"]), context=request_context(state))
        )
        binding = row["browser_binding"]
        return PendingLogin(
            state=state,
            issuer=row["issuer"],
            did=row["did"],
            handle=row["handle"],
            pds_url=row["pds_url"],
            kind=row["kind"],
            redirect_target=row["redirect_target"],
            client_state=row["client_state"],
            browser_binding=bytes(binding) if binding is not None else None,
            verifier=secrets["verifier"],
            dpop_key=SigningKey.from_hex(secrets["dpop_key"]),
            expires_at=row["expires_at"].timestamp(),
            client_kid=row["client_kid"],
        )

    # -- sessions -----------------------------------------------------------------
    def _seal_session(self, session: UserSession) -> bytes:
        secrets = orjson.dumps(
            {
                "access_token": session.access_token,
                "refresh_token": session.refresh_token,
                "dpop_key": session.dpop_key.to_hex(),
            }
        )
        return self._box.seal(secrets, context=session_context(session.session_id))

    async def create_session(self, session: UserSession) -> None:
        await q.insert_session(
            self._db,
            session_id=session.session_id,
            did=session.did,
            handle=session.handle,
            pds_url=session.pds_url,
            issuer=session.issuer,
            scope=session.scope,
            client_kid=session.client_kid,
            secrets=self._seal_session(session),
            access_expires_at=_at(session.access_expires_at),
            expires_at=_at(session.expires_at),
            now=clock.utcnow(),
        )

    def _session(self, row: Row) -> UserSession:
        session_id = row["session_id"]
        secrets = orjson.loads(
            self._box.open(bytes(row["secrets_sealed"]), context=session_context(session_id))
        )
        return UserSession(
            session_id=session_id,
            did=row["did"],
            handle=row["handle"],
            pds_url=row["pds_url"],
            issuer=row["issuer"],
            scope=row["scope"],
            access_token=secrets["access_token"],
            refresh_token=secrets["refresh_token"],
            dpop_key=SigningKey.from_hex(secrets["dpop_key"]),
            access_expires_at=row["access_expires_at"].timestamp(),
            expires_at=row["expires_at"].timestamp(),
            client_kid=row["client_kid"],
        )

    async def remember_identity(self, did: str, handle: str, pds_url: str) -> None:
        """What the sign-in just verified (handle both ways, PDS from the DID document),
        so views of this account are complete at once rather than after the handle
        resolver's next round."""
        await q.ensure_user(self._db, did)
        verified = None if handle == INVALID_HANDLE else handle
        await identity_q.set_user_identity(self._db, did, verified, pds_url, clock.utcnow())

    async def session(self, session_id: str) -> UserSession | None:
        row = await q.get_session(self._db, session_id)
        if row is None or row["expires_at"] <= clock.utcnow():
            return None
        return self._session(row)

    async def store_refresh(self, session: UserSession) -> bool:
        updated = await q.store_refresh(
            self._db,
            session.session_id,
            secrets=self._seal_session(session),
            access_expires_at=_at(session.access_expires_at),
            expires_at=_at(session.expires_at),
            now=clock.utcnow(),
        )
        return updated == 1

    async def delete_session(self, session_id: str) -> bool:
        return await q.delete_session(self._db, session_id) == 1

    async def sweep(self) -> int:
        return await q.delete_expired_sessions(self._db, clock.utcnow())
