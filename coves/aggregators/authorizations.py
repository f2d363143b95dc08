"""Enabling and disabling an aggregator in a community, by its creator.

The decision is a record in the community's own repository
(``social.coves.aggregator.authorization``), written with the community's
credentials and indexed at once, so every AppView indexing the network sees
the same authorizations Coves enforces. Coves writes one record per
aggregator, keyed by the aggregator's DID (a valid record key), so enabling
twice or re-enabling updates it instead of piling up records. Disabling
keeps the record (``enabled: false``, ``disabledAt``, ``disabledBy``), as the
lexicon has it; both writes swap on the current CID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from coves import clock
from coves.atproto.syntax import format_datetime, is_valid_rkey
from coves.auth.base import Viewer
from coves.db import Database, Row
from coves.db.queries import aggregators as q
from coves.db.queries import posting as post_sql
from coves.errors import XRPCError
from coves.logs import get_logger
from coves.posting.repo import CommunityRepo
from coves.read.communities import exists, resolve
from coves.read.services import ReadServices

log = get_logger(__name__)

AUTHORIZATION = "social.coves.aggregator.authorization"


def record_key(aggregator: str) -> str:
    """The aggregator's DID when it is a valid record key (did:plc always is), else a
    digest of it (a did:web with a port carries '%', which record keys may not)."""
    if is_valid_rkey(aggregator):
        return aggregator
    return hashlib.sha256(aggregator.encode()).hexdigest()[:32]


class AggregatorAuthorizations:
    def __init__(self, db: Database, read: ReadServices, repo: CommunityRepo) -> None:
        self._db = db
        self._read = read
        self._repo = repo

    async def _community(self, viewer: Viewer, ident: str) -> Row:
        if viewer.method == "api_key":
            raise XRPCError(403, "NotAuthorized", "sign in to change a community's aggregators")
        community = await resolve(self._db, self._read, ident)
        if community is None or not exists(community):
            raise XRPCError(404, "CommunityNotFound", "no such community")
        if community["created_by"] != viewer.did:
            raise XRPCError(
                403, "NotAuthorized", "only the community's creator may change its aggregators"
            )
        return community

    async def enable(self, viewer: Viewer, body: Mapping[str, Any]) -> dict[str, Any]:
        community = await self._community(viewer, str(body["community"]))
        did = community["did"]
        aggregator = str(body["aggregatorDid"])
        if not await post_sql.has_service_record(self._db, aggregator):
            raise XRPCError(
                404, "AggregatorNotFound", "no aggregator service record is indexed for that DID"
            )
        current = await q.authorization(self._db, did, aggregator)
        record: dict[str, Any] = {
            "$type": AUTHORIZATION,
            "aggregatorDid": aggregator,
            "communityDid": did,
            "enabled": True,
            "createdBy": viewer.did,
            "createdAt": format_datetime(current["created_at"])
            if current is not None
            else format_datetime(clock.utcnow()),
        }
        if body.get("config") is not None:
            record["config"] = body["config"]
        elif current is not None and current["config"] is not None:
            record["config"] = current["config"]
        stored = await self._repo.put(
            did,
            AUTHORIZATION,
            current["rkey"] if current is not None else record_key(aggregator),
            record,
            swap_record=current["record_cid"] if current is not None else None,
            operation="update" if current is not None else "create",
        )
        log.info("aggregator enabled", community=did, aggregator=aggregator)
        return {"uri": stored.uri, "cid": stored.cid, "enabled": True}

    async def disable(self, viewer: Viewer, body: Mapping[str, Any]) -> dict[str, Any]:
        community = await self._community(viewer, str(body["community"]))
        did = community["did"]
        aggregator = str(body["aggregatorDid"])
        current = await q.authorization(self._db, did, aggregator)
        if current is None:
            raise XRPCError(404, "AuthorizationNotFound", "that aggregator was never enabled here")
        now = format_datetime(clock.utcnow())
        record: dict[str, Any] = {
            "$type": AUTHORIZATION,
            "aggregatorDid": aggregator,
            "communityDid": did,
            "enabled": False,
            "createdBy": current["created_by"],
            "createdAt": format_datetime(current["created_at"]),
            "disabledAt": now,
            "disabledBy": viewer.did,
        }
        if current["config"] is not None:
            record["config"] = current["config"]
        stored = await self._repo.put(
            did, AUTHORIZATION, current["rkey"], record, swap_record=current["record_cid"]
        )
        log.info("aggregator disabled", community=did, aggregator=aggregator)
        return {"uri": stored.uri, "cid": stored.cid, "enabled": False}
