"""The read rules' answer for the subject of a write (a post, a comment, a community).

A write through Coves (comment, vote, subscription, community block, post) is
allowed exactly when its author could read what it is about: the same facts,
the same relations and the same :mod:`coves.read.rules` decide, so a write
can neither reach nor reveal anything a read would hide. A write into a
community's threads also needs no block between writer and community
(``rules.may_write_in``). The writes turn the answer into their error
(``coves.writes.records.refuse``): not found where the reads say not found,
"blocked" where a block stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from coves.db import Database, Row
from coves.db.queries import comments as comment_sql
from coves.read import facts, relations, rules
from coves.read.posts import HydratedPost
from coves.read.rules import Why
from coves.read.services import ReadServices


@dataclass(frozen=True, slots=True)
class Target:
    """A post or comment as one viewer may see it."""

    uri: str
    post_uri: str  # the thread's post (the post itself for a post)
    why: Why | None  # None: the viewer may see it; else why not (Why.NOT_FOUND: not indexed)
    cid: str | None = None
    community_did: str | None = None


def _unseen(uri: str, post_uri: str = "") -> Target:
    return Target(uri, post_uri, Why.NOT_FOUND)


async def _post(svc: ReadServices, uri: str) -> HydratedPost | None:
    # Fresh: a post deleted or withheld a moment ago must not take new comments or votes.
    return (await svc.posts.load([uri], fresh=True)).get(uri)


async def post(db: Database, svc: ReadServices, viewer: str, uri: str) -> Target:
    """The post at ``uri`` as ``viewer`` may see it (every rule of ``may_see_post``)."""
    found = await _post(svc, uri)
    if found is None:
        return _unseen(uri, uri)
    community = found.community_did
    state = await relations.load(
        db, viewer, communities=[community], actors=[found.facts.author.did, community]
    )
    why = rules.may_see_post(found.facts, state.relations)
    return Target(
        uri,
        uri,
        why or rules.may_write_in(community, state.relations),
        cid=found.view.get("cid"),
        community_did=found.community_did,
    )


async def comment(db: Database, svc: ReadServices, viewer: str, uri: str) -> Target:
    """The live comment at ``uri`` as ``viewer`` may see it: its thread must be
    readable (the post's rules), then its own content (``may_see_comment``: a
    deleted or withheld author's comment, or one across a block, is a placeholder
    to the reads, not something to answer or vote on)."""
    rows = await comment_sql.live_by_uris(db, [uri])
    if not rows:
        return _unseen(uri)
    row: Row = rows[0]
    root: str = row["root_uri"]
    thread = await _post(svc, root)
    if thread is None:
        return _unseen(uri, root)
    state = await relations.load(
        db,
        viewer,
        communities=[thread.community_did],
        actors=[thread.facts.author.did, row["commenter_did"], thread.community_did],
    )
    why = rules.may_see_post(thread.facts, state.relations)
    if why is None:
        why = rules.may_see_comment(facts.comment(row), state.relations)
    if why is None:
        why = rules.may_write_in(thread.community_did, state.relations)
    return Target(uri, root, why, cid=row["cid"], community_did=thread.community_did)


async def community(db: Database, viewer: str, row: Row) -> Why | None:
    """A community (its ``communities`` row) as ``viewer`` may write into it, by
    subscribing: readable (``may_read_community``) and no block either way
    (``may_write_in``)."""
    found = facts.community(row)
    state = await relations.load(db, viewer, communities=[found.did], actors=[found.did])
    return rules.may_read_community(found, state.relations) or rules.may_write_in(
        found.did, state.relations
    )
