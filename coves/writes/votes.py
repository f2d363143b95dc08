"""Votes through Coves: social.coves.feed.vote.create / .delete.

Toggle semantics, as the clients expect: voting the same direction again
removes the vote (the answer is still a JSON object, without uri/cid);
voting the other direction rewrites the existing vote record in place
(``putRecord`` on its rkey: one commit, the subject's counters move once);
otherwise a new vote record is created. The caller's current vote is read
from the index, which the write path keeps current (read-your-writes).

A vote is allowed exactly where the voter could read its subject under the
read rules (``coves.read.targets``: the post, or the comment and its thread),
and refused as the reads would answer (404 ``SubjectNotFound``, or 403
``Blocked``). Removing one's own vote is always allowed.
"""

from __future__ import annotations

from typing import Any

from coves.db import Database
from coves.db.queries import user_writes as q
from coves.errors import XRPCError
from coves.lexicon.registry import LexiconRegistry
from coves.read import targets
from coves.read.services import ReadServices
from coves.writes.records import now_datetime, ref_answer, refuse, strong_ref, validated
from coves.writes.repo import UserRepo

VOTE = "social.coves.feed.vote"
DIRECTIONS = {"up": 1, "down": -1}


async def create_vote(
    db: Database,
    read: ReadServices,
    lexicons: LexiconRegistry | None,
    repo: UserRepo,
    body: dict[str, Any],
) -> dict[str, Any]:
    subject_uri, subject_cid = strong_ref(body.get("subject"), "subject")
    direction = body.get("direction")
    if direction not in DIRECTIONS:
        raise XRPCError(400, "InvalidRequest", "direction must be up or down")
    if subject_uri.collection not in (
        "social.coves.community.post",
        "social.coves.community.comment",
    ):
        raise XRPCError(400, "InvalidSubject", "only posts and comments can be voted on")
    uri = str(subject_uri)
    on_post = subject_uri.collection == "social.coves.community.post"
    subject = await (targets.post if on_post else targets.comment)(db, read, repo.did, uri)
    refuse(subject.why, XRPCError(404, "SubjectNotFound", "no such post or comment"))
    record = {
        "$type": VOTE,
        "subject": {"uri": uri, "cid": subject_cid},
        "direction": direction,
        "createdAt": now_datetime(),
    }
    validated(lexicons, VOTE, record)
    existing = await q.live_votes(db, repo.did, uri)
    if existing:
        current = existing[0]
        if current["direction"] == DIRECTIONS[direction]:
            for vote in existing:  # toggled off: every live vote on it goes
                await repo.delete(VOTE, vote["rkey"])
            return {}
        written = await repo.put(VOTE, current["rkey"], record, swap_record=current["cid"])
        return ref_answer(written)
    return ref_answer(await repo.create(VOTE, record))


async def delete_vote(db: Database, repo: UserRepo, body: dict[str, Any]) -> dict[str, Any]:
    subject_uri, _ = strong_ref(body.get("subject"), "subject", cid_required=False)
    existing = await q.live_votes(db, repo.did, str(subject_uri))
    if not existing:
        raise XRPCError(404, "VoteNotFound", "you have not voted on this")
    for vote in existing:
        await repo.delete(VOTE, vote["rkey"])
    return {}
