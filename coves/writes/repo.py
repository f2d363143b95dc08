"""Writing into a signed-in user's own repository, as that user.

Every call goes through the one PDS client (``coves.pds``) with
:class:`DpopSessionAuth`, the user's OAuth session as a PDS auth strategy:
``Authorization: DPoP <access token>`` and a proof signed with the session's
DPoP key, the PDS's nonce remembered and retried on ``use_dpop_nonce``, and
one refresh of the session when the PDS says the access token is no longer
good. Each accepted write is indexed at once through the ingestion indexer
(``RepoWriter``): the user reads it as soon as the call returns, the stream's
echo of it changes nothing, and a PDS call that fails changes nothing here.

Users' PDSes are user-controlled hosts: their pool uses the guarded
transport of the safe fetcher (public addresses only outside development).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from coves.auth.base import Viewer
from coves.config import Settings
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.metrics import Metrics
from coves.net.addresses import system_resolve
from coves.net.fetch import guarded_transport
from coves.oauth.dpop import DpopClient
from coves.oauth.errors import session_expired
from coves.oauth.jose import dpop_proof
from coves.oauth.service import OAuthService
from coves.oauth.sessions import SessionManager
from coves.oauth.store import UserSession
from coves.pds import PdsAuthError, PdsClient, PdsConnections, RepoWriter, Written
from coves.pds.client import RecordValue

log = get_logger(__name__)

# What a PDS answers when an access token is no longer good (reference PDS: 401 with
# WWW-Authenticate: DPoP error="invalid_token"; XRPC error names vary by version).
_STALE_TOKEN = {"InvalidToken", "ExpiredToken", "invalid_token"}


class DpopSessionAuth:
    """A user's OAuth session as a ``coves.pds`` auth strategy."""

    def __init__(self, session: UserSession, sessions: SessionManager, dpop: DpopClient) -> None:
        self.session = session
        self._sessions = sessions
        self._dpop = dpop
        self._refreshed = False

    def __repr__(self) -> str:
        return f"DpopSessionAuth(did={self.session.did!r})"

    async def authorize(self, request: httpx.Request) -> None:
        url = str(request.url)
        token = self.session.access_token
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = dpop_proof(
            self.session.dpop_key,
            request.method,
            url,
            nonce=self._dpop.nonce_for(url),
            access_token=token,
        )

    async def on_response(
        self, request: httpx.Request, response: httpx.Response, error: str | None
    ) -> bool:
        url = str(request.url)
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self._dpop.remember(url, nonce)
        if response.status_code != 401:
            return False
        challenge = response.headers.get("WWW-Authenticate", "")
        if "use_dpop_nonce" in challenge or error == "use_dpop_nonce":
            return bool(nonce)
        if self._refreshed:
            return False
        if error in _STALE_TOKEN or "invalid_token" in challenge:
            self._refreshed = True
            self.session = await self._sessions.refresh(
                self.session.session_id, stale_access_token=self.session.access_token
            )
            return True
        return False


def session_required() -> XRPCError:
    return XRPCError(
        403,
        "SessionRequired",
        "writing through Coves needs a Coves sign-in (/oauth/login); clients holding their "
        "own PDS session can write the record to their PDS directly",
    )


@dataclass
class UserRepo:
    """One request's access to the caller's repository."""

    did: str
    client: PdsClient
    auth: DpopSessionAuth
    writer: RepoWriter

    async def create(
        self, collection: str, record: Mapping[str, Any], *, rkey: str | None = None
    ) -> Written:
        return await self.writer.create(
            self.client, self.auth, repo=self.did, collection=collection, record=record, rkey=rkey
        )

    async def put(
        self,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        *,
        swap_record: str | None = None,
        creating: bool = False,
    ) -> Written:
        return await self.writer.put(
            self.client,
            self.auth,
            repo=self.did,
            collection=collection,
            rkey=rkey,
            record=record,
            swap_record=swap_record,
            operation="create" if creating else "update",
        )

    async def delete(self, collection: str, rkey: str) -> Written:
        return await self.writer.delete(
            self.client, self.auth, repo=self.did, collection=collection, rkey=rkey
        )

    async def get(self, collection: str, rkey: str) -> RecordValue:
        return await self.client.get_record(repo=self.did, collection=collection, rkey=rkey)

    async def upload_blob(self, data: bytes, mime_type: str) -> dict[str, Any]:
        return await self.client.upload_blob(self.auth, data, mime_type)


@dataclass
class UserRepos:
    """Opens the caller's repository for one request (``ctx.user_repos``)."""

    sessions: SessionManager
    dpop: DpopClient
    connections: PdsConnections
    writer: RepoWriter

    async def open(self, viewer: Viewer) -> UserRepo:
        if viewer.session_id is None:
            raise session_required()
        session = await self.sessions.usable(viewer.session_id)
        if session.did != viewer.did:
            raise session_required()
        auth = DpopSessionAuth(session, self.sessions, self.dpop)
        return UserRepo(session.did, self.connections.client(session.pds_url), auth, self.writer)

    async def aclose(self) -> None:
        await self.connections.aclose()


def build_user_repos(
    settings: Settings,
    metrics: Metrics,
    oauth: OAuthService,
    writer: RepoWriter,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> UserRepos:
    """Users' PDSes get a pool of their own whose connections pass the safe fetcher's
    address checks (``transport`` replaces it in tests that inject faults)."""
    if transport is None:
        transport = guarded_transport(
            system_resolve, allow_private=settings.allow_private_network_fetch
        )
    return UserRepos(
        oauth.sessions,
        oauth.dpop,
        PdsConnections(metrics=metrics, transport=transport),
        writer,
    )


@asynccontextmanager
async def caller_repo(repos: UserRepos | None, viewer: Viewer | None) -> AsyncIterator[UserRepo]:
    """The caller's repository for one write; a PDS that refuses the session is 401."""
    if repos is None:
        raise XRPCError(501, "MethodNotImplemented", "writes through Coves are not configured")
    if viewer is None:
        raise XRPCError(401, "AuthenticationRequired", "sign in first")
    repo = await repos.open(viewer)
    try:
        yield repo
    except PdsAuthError:
        log.info("the PDS refused a session's token after a refresh", did=repo.did)
        raise session_expired("your PDS refused this session; sign in again") from None
