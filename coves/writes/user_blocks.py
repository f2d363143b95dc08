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
from coves.errors import XRPCError
from coves.identity import IdentityError, IdentityResolver
from coves.lexicon.registry import LexiconRegistry
from coves.writes.memberships import delete_all, existing_or_create
from coves.writes.records import block_answer, now_datetime
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
    record = {"$type": BLOCK, "subject": subject, "createdAt": now_datetime()}
    uri, cid, _ = await existing_or_create(
        db, repo, "user_block", subject, record, lexicons=lexicons
    )
    return block_answer(uri, cid)


async def unblock_user(
    db: Database, identity: IdentityResolver | None, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    subject = await _subject(identity, repo, body.get("subject"))
    return await delete_all(
        db, repo, "user_block", subject, collection=BLOCK, missing="you do not block this account"
    )
