"""The community repository as posting sees it, on the real PDS client.

A swap that no longer matches is the PDS client's 409 ``InvalidSwap``.

Every call goes through the one PDS client (timeouts, retries of what is
safe, PDS errors as ours: a PDS that is down is 503 ``PdsUnavailable``) and
every record write through the one write-then-index path (``RepoWriter``),
so a post is readable everywhere the moment the call returns and the
stream's echo of it changes nothing. Credentials come from a
:class:`CommunityCredentials` source: in production the hosting service's
sealed, lazily refreshed community sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from coves.errors import XRPCError
from coves.hosting.sessions import CommunitySessions
from coves.pds.auth import PdsAuth
from coves.pds.services import PdsServices
from coves.posting.repo import Stored


class CommunityCredentials(Protocol):
    async def auth_for(self, community: str) -> tuple[str, PdsAuth]:
        """(PDS URL, auth) of a community hosted here; XRPCError 400
        ``CommunityNotHostedHere`` for any other."""
        ...


class HostedCredentials:
    """The hosting service's community sessions: sealed at rest, renewed before a
    write when near expiry and once more on a 401 (``CommunityAuth``)."""

    def __init__(self, sessions: CommunitySessions) -> None:
        self._sessions = sessions

    async def auth_for(self, community: str) -> tuple[str, PdsAuth]:
        try:
            creds = await self._sessions.load_did(community)
        except XRPCError as exc:
            if exc.status != 404:
                raise
            raise XRPCError(
                400,
                "CommunityNotHostedHere",
                "this community is hosted by another instance: post through it",
            ) from None
        return creds.pds_url, self._sessions.auth(creds)


class PdsCommunityRepo:
    def __init__(self, pds: PdsServices, credentials: CommunityCredentials) -> None:
        self._pds = pds
        self._credentials = credentials

    async def upload_blob(self, community: str, data: bytes, mime_type: str) -> dict[str, Any]:
        url, auth = await self._credentials.auth_for(community)
        return await self._pds.client(url).upload_blob(auth, data, mime_type)

    async def create(
        self, community: str, collection: str, record: Mapping[str, Any], *, rkey: str | None = None
    ) -> Stored:
        url, auth = await self._credentials.auth_for(community)
        written = await self._pds.writer.create(
            self._pds.client(url),
            auth,
            repo=community,
            collection=collection,
            record=record,
            rkey=rkey,
        )
        return Stored(written.uri, written.cid)

    async def put(
        self,
        community: str,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        *,
        swap_record: str | None,
        operation: Literal["create", "update"] = "update",
    ) -> Stored:
        url, auth = await self._credentials.auth_for(community)
        written = await self._pds.writer.put(
            self._pds.client(url),
            auth,
            repo=community,
            collection=collection,
            rkey=rkey,
            record=record,
            swap_record=swap_record,
            operation=operation,
        )
        return Stored(written.uri, written.cid)

    async def delete(
        self, community: str, collection: str, rkey: str, *, swap_record: str | None = None
    ) -> Stored:
        url, auth = await self._credentials.auth_for(community)
        written = await self._pds.writer.delete(
            self._pds.client(url),
            auth,
            repo=community,
            collection=collection,
            rkey=rkey,
            swap_record=swap_record,
        )
        return Stored(written.uri, written.cid)
