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


async def existing_or_create(
    db: Database,
    repo: UserRepo,
    kind: str,
    subject: str,
    record: dict[str, Any],
    *,
    lexicons: LexiconRegistry | None,
) -> tuple[str, str | None, bool]:
    """(uri, cid, existed) of the caller's ``kind`` record about ``subject``: the live one
    if there is one (a retried call never writes a second), else a new one."""
    existing = await q.live_relations(db, kind, repo.did, subject)
    if existing:
        return existing[0]["uri"], existing[0]["record_cid"], True
    validated(lexicons, str(record["$type"]), record)
    written = await repo.create(str(record["$type"]), record)
    return written.uri, written.cid, False


async def delete_all(
    db: Database, repo: UserRepo, kind: str, subject: str, *, collection: str, missing: str
) -> dict[str, Any]:
    """Delete every live ``kind`` record of the caller about ``subject`` (404 ``missing``)."""
    existing = await q.live_relations(db, kind, repo.did, subject)
    if not existing:
        raise XRPCError(404, "NotFound", missing)
    for row in existing:
        await repo.delete(collection, row["rkey"])
    return {"success": True}


async def subscribe(
    db: Database,
    svc: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    existing = await q.live_relations(db, "subscription", repo.did, community["did"])
    if not existing and community["visibility"] == "private":
        raise XRPCError(403, "Forbidden", "this community is private")
    record = {
        "$type": SUBSCRIPTION,
        "subject": community["did"],
        "contentVisibility": _visibility(body.get("contentVisibility")),
        "createdAt": now_datetime(),
    }
    uri, cid, existed = await existing_or_create(
        db, repo, "subscription", community["did"], record, lexicons=lexicons
    )
    return {"uri": uri, "cid": cid, "existing": existed}


async def unsubscribe(
    db: Database, svc: ReadServices, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    return await delete_all(
        db,
        repo,
        "subscription",
        community["did"],
        collection=SUBSCRIPTION,
        missing="you are not subscribed to this community",
    )


async def block_community(
    db: Database,
    svc: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    record = {"$type": BLOCK, "subject": community["did"], "createdAt": now_datetime()}
    uri, cid, _ = await existing_or_create(
        db, repo, "community_block", community["did"], record, lexicons=lexicons
    )
    return block_answer(uri, cid)


async def unblock_community(
    db: Database, svc: ReadServices, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    community = await _community(db, svc, body)
    return await delete_all(
        db,
        repo,
        "community_block",
        community["did"],
        collection=BLOCK,
        missing="you have not blocked this community",
    )
