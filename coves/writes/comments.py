"""Comments through Coves: social.coves.community.comment.create / .update / .delete.

The record is built from the input and checked against the comment lexicon
before the PDS sees it. Threading is checked against the index (the root is
a live post; the parent is that post or a live comment of the same thread)
so a comment Coves writes is one the indexer will accept, and both must be
readable by the commenter under the read rules (``coves.read.targets``): a
comment is allowed exactly where the commenter could read what it answers,
and refused as the reads would answer (not found, or blocked). An update is a
full replacement of the editable fields; threading and ``createdAt`` come
from the current record on the PDS, and the write swaps on its CID, so two
concurrent edits cannot silently overwrite each other (409).
"""

from __future__ import annotations

from typing import Any

from coves.db import Database
from coves.errors import XRPCError
from coves.lexicon.registry import LexiconRegistry
from coves.pds import PdsConflict, PdsNotFound
from coves.read import targets
from coves.read.services import ReadServices
from coves.writes.records import (
    now_datetime,
    record_uri_param,
    ref_answer,
    refuse,
    strong_ref,
    validated,
)
from coves.writes.repo import UserRepo

COMMENT = "social.coves.community.comment"
POST = "social.coves.community.post"
EDITABLE = ("content", "facets", "embed", "langs", "labels")


def _editable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in EDITABLE if body.get(k) is not None}


async def _check_thread(
    db: Database, read: ReadServices, writer: str, root: str, parent: str
) -> None:
    post = await targets.post(db, read, writer, root)
    refuse(post.why, XRPCError(404, "NotFound", "the post replied under does not exist"))
    if parent == root:
        return
    answered = await targets.comment(db, read, writer, parent)
    missing = XRPCError(404, "ParentNotFound", "the comment replied to does not exist")
    if answered.post_uri != root:
        if answered.why is not None:  # not even its thread is to be revealed
            raise missing
        raise XRPCError(400, "InvalidRequest", "reply.parent is not in reply.root's thread")
    refuse(answered.why, missing)


async def create_comment(
    db: Database,
    read: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    reply = body.get("reply")
    if not isinstance(reply, dict):
        raise XRPCError(400, "InvalidRequest", "reply {root, parent} is required")
    root_uri, root_cid = strong_ref(reply.get("root"), "reply.root")
    parent_uri, parent_cid = strong_ref(reply.get("parent"), "reply.parent")
    if root_uri.collection != POST:
        raise XRPCError(400, "InvalidRequest", "reply.root must be a post")
    if parent_uri.collection not in (POST, COMMENT):
        raise XRPCError(400, "InvalidRequest", "reply.parent must be a post or a comment")
    assert root_cid is not None and parent_cid is not None
    await _check_thread(db, read, repo.did, root=str(root_uri), parent=str(parent_uri))
    record = {
        "$type": COMMENT,
        "reply": {
            "root": {"uri": str(root_uri), "cid": root_cid},
            "parent": {"uri": str(parent_uri), "cid": parent_cid},
        },
        **_editable(body),
        "createdAt": now_datetime(),
    }
    validated(lexicons, COMMENT, record)
    return ref_answer(await repo.create(COMMENT, record))


def _own_comment(repo: UserRepo, value: Any) -> str:
    uri = record_uri_param(value, "uri")
    if uri.collection != COMMENT:
        raise XRPCError(400, "InvalidRequest", "uri must name a comment")
    if uri.authority != repo.did:
        raise XRPCError(403, "NotAuthorized", "only the author can change a comment")
    assert uri.rkey is not None
    return uri.rkey


async def update_comment(
    lexicons: LexiconRegistry | None, repo: UserRepo, body: dict[str, Any]
) -> dict[str, Any]:
    rkey = _own_comment(repo, body.get("uri"))
    try:
        current = await repo.get(COMMENT, rkey)
    except PdsNotFound:
        raise XRPCError(404, "NotFound", "no such comment") from None
    record = {
        "$type": COMMENT,
        "reply": current.value.get("reply"),  # threading is immutable
        **_editable(body),
        "createdAt": current.value.get("createdAt") or now_datetime(),
    }
    validated(lexicons, COMMENT, record)
    try:
        written = await repo.put(COMMENT, rkey, record, swap_record=current.cid)
    except PdsConflict:
        raise XRPCError(
            409, "ConcurrentModification", "the comment changed meanwhile; reload and retry"
        ) from None
    return ref_answer(written)


async def delete_comment(repo: UserRepo, body: dict[str, Any]) -> dict[str, Any]:
    rkey = _own_comment(repo, body.get("uri"))
    await repo.delete(COMMENT, rkey)
    return {}
