"""What posting needs from the community's repository, as one small interface.

Posts, their images and thumbnails, and aggregator authorizations live in the
community's repository and are written with the community's own credentials
(sealed at rest, refreshed before a write: the community-hosting work). The
posting code sees only this protocol, so its checks are testable without a
PDS and the credential handling stays in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Stored:
    """A record write the PDS accepted (and that was indexed at once)."""

    uri: str
    cid: str | None


class CommunityRepo(Protocol):
    """Writes into the repository of a community hosted on this instance.

    Every method raises an XRPCError: 400 ``CommunityNotHostedHere`` when this
    instance holds no credentials for ``community``, 503 ``PdsUnavailable``
    when its PDS is down (nothing written, nothing indexed), 409
    ``InvalidSwap`` when ``swap_record`` is no longer the record's CID.
    """

    async def upload_blob(self, community: str, data: bytes, mime_type: str) -> dict[str, Any]:
        """The blob ref (``{"$type": "blob", "ref": {"$link": cid}, ...}``)."""
        ...

    async def create(
        self, community: str, collection: str, record: Mapping[str, Any], *, rkey: str | None = None
    ) -> Stored: ...

    async def put(
        self,
        community: str,
        collection: str,
        rkey: str,
        record: Mapping[str, Any],
        *,
        swap_record: str | None,
        operation: Literal["create", "update"] = "update",
    ) -> Stored: ...

    async def delete(
        self, community: str, collection: str, rkey: str, *, swap_record: str | None = None
    ) -> Stored: ...
