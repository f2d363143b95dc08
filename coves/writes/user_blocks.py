"""Blocking accounts through Coves: social.coves.actor.blockUser / .unblockUser.

The subject may be a DID or a handle (resolved both ways by the identity
layer). The block is a ``social.coves.actor.block`` record in the caller's
repository; the read rules hide each side's content from the other as soon
as it is indexed, which is before the call returns.
"""

from __future__ import annotations

from typing import Any

from coves.atproto.syntax import is_valid_did
from coves.db import Database
from coves.db.queries import user_writes as q
from coves.errors import XRPCError
from coves.identity import IdentityError, IdentityResolver
from coves.lexicon.registry import LexiconRegistry
from coves.writes.records import block_answer, now_datetime, validated
from coves.writes.repo import UserRepo

BLOCK = "social.coves.actor.block"


async def _subject(identity: IdentityResolver | None, repo: UserRepo, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise XRPCError(400, "InvalidRequest", "subject (a DID or handle) is required")
    subject = value.strip().removeprefix("@")
    if subject.startswith("did:"):
        if not is_valid_did(subject):
            raise XRPCError(400, "InvalidRequest", "subject is not a valid DID")
        did = subject
    else:
        if identity is None:
            raise XRPCError(400, "InvalidRequest", "subject must be a DID here")
        try:
            did = (await identity.resolve_actor(subject)).did
        except IdentityError:
            raise XRPCError(404, "NotFound", f"{subject} does not resolve to an account") from None
    if did == repo.did:
        raise XRPCError(400, "InvalidRequest", "you cannot block yourself")
    return did


async def block_user(
    db: Database,
    identity: IdentityResolver | None,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    subject = await _subject(identity, repo, body.get("subject"))
    existing = await q.live_user_blocks(db, repo.did, subject)
    if existing:
        return block_answer(existing[0]["uri"], existing[0]["record_cid"])
    record = {"$type": BLOCK, "subject": subject, "createdAt": now_datetime()}
    validated(lexicons, BLOCK, record)
    written = await repo.create(BLOCK, record)
    return block_answer(written.uri, written.cid)


async def unblock_user(
    db: Database, identity: IdentityResolver | None, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    subject = await _subject(identity, repo, body.get("subject"))
    existing = await q.live_user_blocks(db, repo.did, subject)
    if not existing:
        raise XRPCError(404, "NotFound", "you do not block this account")
    for row in existing:
        await repo.delete(BLOCK, row["rkey"])
    return {"success": True}
