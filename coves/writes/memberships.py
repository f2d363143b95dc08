"""Subscriptions and community blocks through Coves.

``subscribe`` / ``unsubscribe`` write ``social.coves.community.subscription``
records, ``blockCommunity`` / ``unblockCommunity`` ``social.coves.community.block``
records, into the caller's repository. Subscribing or blocking twice answers
the existing record (``existing: true``), so a retried request never leaves
two. Private communities refuse new subscribers (403), as the read rules keep
them hidden from non-subscribers.
"""

from __future__ import annotations

from typing import Any

from coves.db import Database, Row
from coves.db.queries import user_writes as q
from coves.errors import XRPCError
from coves.lexicon.registry import LexiconRegistry
from coves.read.communities import exists, resolve
from coves.read.services import ReadServices
from coves.writes.records import block_answer, now_datetime, validated
from coves.writes.repo import UserRepo

SUBSCRIPTION = "social.coves.community.subscription"
BLOCK = "social.coves.community.block"
DEFAULT_VISIBILITY = 3


async def _community(db: Database, svc: ReadServices, body: dict[str, Any]) -> Row:
    identifier = body.get("community")
    if not isinstance(identifier, str) or not identifier.strip():
        raise XRPCError(400, "InvalidRequest", "community is required")
    row = await resolve(db, svc, identifier)
    if row is None or not exists(row):
        raise XRPCError(404, "NotFound", "no such community")
    return row


def _visibility(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        return DEFAULT_VISIBILITY
    return value


async def subscribe(
    db: Database,
    svc: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    existing = await q.live_subscriptions(db, repo.did, community["did"])
    if existing:
        first = existing[0]
        return {"uri": first["uri"], "cid": first["record_cid"], "existing": True}
    if community["visibility"] == "private":
        raise XRPCError(403, "Forbidden", "this community is private")
    record = {
        "$type": SUBSCRIPTION,
        "subject": community["did"],
        "contentVisibility": _visibility(body.get("contentVisibility")),
        "createdAt": now_datetime(),
    }
    validated(lexicons, SUBSCRIPTION, record)
    written = await repo.create(SUBSCRIPTION, record)
    return {"uri": written.uri, "cid": written.cid, "existing": False}


async def unsubscribe(
    db: Database, svc: ReadServices, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    existing = await q.live_subscriptions(db, repo.did, community["did"])
    if not existing:
        raise XRPCError(404, "NotFound", "you are not subscribed to this community")
    for row in existing:
        await repo.delete(SUBSCRIPTION, row["rkey"])
    return {"success": True}


async def block_community(
    db: Database,
    svc: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    existing = await q.live_community_blocks(db, repo.did, community["did"])
    if existing:
        return block_answer(existing[0]["uri"], existing[0]["record_cid"])
    record = {"$type": BLOCK, "subject": community["did"], "createdAt": now_datetime()}
    validated(lexicons, BLOCK, record)
    written = await repo.create(BLOCK, record)
    return block_answer(written.uri, written.cid)


async def unblock_community(
    db: Database, svc: ReadServices, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    existing = await q.live_community_blocks(db, repo.did, community["did"])
    if not existing:
        raise XRPCError(404, "NotFound", "you have not blocked this community")
    for row in existing:
        await repo.delete(BLOCK, row["rkey"])
    return {"success": True}
