"""Subscriptions and community blocks through Coves.

``subscribe`` / ``unsubscribe`` write ``social.coves.community.subscription``
records, ``blockCommunity`` / ``unblockCommunity`` ``social.coves.community.block``
records, into the caller's repository. Subscribing or blocking twice answers
the existing record (``existing: true``), so a retried request never leaves
two.

Subscribing to or blocking a community is allowed exactly when the caller may
read it (``coves.read.communities.may_read``, the read rules): a community
that is gone, unverified or private to the caller is 404 ``NotFound``, as
``community.get`` answers. Subscribing also needs no block either way
(``coves.read.targets.community``): 403 ``Blocked`` when the caller blocks the
community or its account blocks the caller. So a private community takes subscriptions from
those the rules count as members: its creator, and subscribers (whose call
answers their existing subscription); there are no invitations yet. Removing
one's own subscription or block is always allowed, whatever became of the
community, since ``getBlockedCommunities`` lists every block of the caller's.
"""

from __future__ import annotations

from typing import Any

from coves.db import Database, Row
from coves.db.queries import user_writes as q
from coves.errors import XRPCError
from coves.lexicon.registry import LexiconRegistry
from coves.read import targets
from coves.read.communities import may_read, resolve
from coves.read.services import ReadServices
from coves.writes.records import block_answer, now_datetime, refuse, validated
from coves.writes.repo import UserRepo

SUBSCRIPTION = "social.coves.community.subscription"
BLOCK = "social.coves.community.block"
DEFAULT_VISIBILITY = 3


def _identifier(body: dict[str, Any]) -> str:
    identifier = body.get("community")
    if not isinstance(identifier, str) or not identifier.strip():
        raise XRPCError(400, "InvalidRequest", "community is required")
    return identifier.strip()


def _not_found() -> XRPCError:
    return XRPCError(404, "NotFound", "no such community")


async def _community(db: Database, svc: ReadServices, body: dict[str, Any], viewer: str) -> Row:
    """The community the body names, if ``viewer`` may read it (404 otherwise)."""
    row = await resolve(db, svc, _identifier(body))
    if row is None or await may_read(db, viewer, row) is not None:
        raise _not_found()
    return row


async def _subject(db: Database, svc: ReadServices, body: dict[str, Any]) -> str:
    """The DID the caller's own records name, for removing them: any community the
    identifier resolves to, readable or not (a DID needs no community at all)."""
    identifier = _identifier(body)
    row = await resolve(db, svc, identifier)
    if row is not None:
        return str(row["did"])
    if identifier.startswith("did:"):
        return identifier
    raise _not_found()


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
    community = await resolve(db, svc, _identifier(body))
    if community is None:
        raise _not_found()
    refuse(await targets.community(db, repo.did, community), _not_found())
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
    return await delete_all(
        db,
        repo,
        "subscription",
        await _subject(db, svc, body),
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
    community = await _community(db, svc, body, repo.did)
    record = {"$type": BLOCK, "subject": community["did"], "createdAt": now_datetime()}
    uri, cid, _ = await existing_or_create(
        db, repo, "community_block", community["did"], record, lexicons=lexicons
    )
    return block_answer(uri, cid)


async def unblock_community(
    db: Database, svc: ReadServices, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    return await delete_all(
        db,
        repo,
        "community_block",
        await _subject(db, svc, body),
        collection=BLOCK,
        missing="you have not blocked this community",
    )
