"""Comment threads for getComments: top-level paging and per-level reply loading.

Cost per request is bounded by the tree's depth, not its size: the post
(the read API's hydrator), then one connection checkout for the page of
top-level comments and one statement per reply level (each reads at most
``repliesPerParent + 1`` replies of every parent on the level; loading stops
at the first empty level or when the response budget is spent), and with a
viewer one statement for their relations (votes, blocks, membership).
Identical requests within a moment share one build
(``ReadServices.comment_threads``); what differs per viewer is overlaid.

Top-level paging. ``new`` pages by keyset on (ranked_at, uri), which is
stable by construction. ``hot`` and ``top`` move while a client pages, so the
first page freezes the ordered top-level URIs in a listing snapshot
(coves.read.snapshots) and later pages read that frozen order by offset;
contents are hydrated live, so counts stay current. A snapshot holds at most
``FEED_SNAPSHOT_SIZE`` top-level comments; an expired snapshot is a 400
``InvalidCursor`` (the client reloads the thread).

Subtrees (``parentRkey``): the comment with that record key under the post is
the one top-level entry, its replies nested below it; ``depth`` counts from
it (0: the comment alone) and ``limit``/``cursor`` page its direct replies.
An unknown key is 404 ``ParentNotFound``.

Rules (:mod:`coves.read.rules`): the thread exists for a viewer only if its
post is shown to them (a private community's thread is not found by
outsiders, and a thread under a post by someone the viewer blocks, or who
blocks them, is not found either). The shared build applies the
viewer-independent comment rules (deleted comments and withheld accounts
become placeholders while replies hang under them; otherwise they are
omitted); the per-viewer overlay turns comments by blocked accounts into
placeholders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg import Connection

from coves.atproto.syntax import AtUri, is_valid_did
from coves.clock import utcnow
from coves.cursors import CursorCodec, invalid_cursor
from coves.db import Database, Row
from coves.db.queries import comments as comment_sql
from coves.db.queries import identity as identity_sql
from coves.errors import XRPCError, not_found
from coves.read import facts, relations, rules
from coves.read.comments.params import ThreadParams
from coves.read.feeds import TIMEFRAMES
from coves.read.posts import HydratedPost, present
from coves.read.rules import Why
from coves.read.services import ReadServices
from coves.read.snapshots import SqlCompute
from coves.read.views.blobs import BlobUrls
from coves.read.views.comment import comment_view, live_comments, thread_view_comment, with_viewer

# Replies (below the top level) one response may carry: a huge thread asked for
# at depth 100 must not turn into one huge response. Cut subtrees say hasMore.
MAX_REPLIES_PER_RESPONSE = 1000

NEW_CURSOR = "comments.new"
RANKED_CURSOR = "comments.ranked"


@dataclass(frozen=True)
class SharedThread:
    """One page of a thread as anyone sees it: what the thread cache holds."""

    post: HydratedPost
    comments: list[dict[str, Any]]
    cursor: str | None
    authors: dict[str, str]  # live comment URI -> its author's DID (for the overlay)
    # Every comment URI and author DID the build read, placeholders included: a change
    # to any of them (coves.changed) drops the build (ReadServices.drop_changed).
    about: frozenset[str] = frozenset()

    def shows(self, comments: frozenset[str], actors: frozenset[str]) -> bool:
        """Whether a change to these comments or actors makes this build stale."""
        post = self.post
        return (
            not self.about.isdisjoint(comments)
            or not self.about.isdisjoint(actors)
            or post.facts.author.did in actors
            or post.community_did in actors
        )


def _parent_of(params: ThreadParams, parent: Row | None) -> str:
    """What the top level hangs from: the post, or in subtree mode the named comment."""
    return parent["uri"] if parent is not None else params.post


async def get_comments(
    db: Database, svc: ReadServices, params: ThreadParams, viewer: str | None
) -> dict[str, Any]:
    """The getComments response; raises 404 NotFound/ParentNotFound or 400 InvalidCursor."""
    params = await _with_did_authority(db, params)
    if params.cursor is not None:
        # Refuse a forged or foreign cursor before any query (checked again on use).
        kind = NEW_CURSOR if params.sort == "new" else RANKED_CURSOR
        svc.cursors.decode(kind, params.cursor)
    post = (await svc.posts.load([params.post])).get(params.post)
    if post is None:
        raise not_found("post not found")
    _require_shown(rules.may_see_post(post.facts, rules.ANONYMOUS), viewer)

    async def build() -> SharedThread:
        return await _build_shared(db, svc, post, params)

    shared = await svc.comment_threads.get_or_load(params, build)
    assert shared is not None  # build() returns a thread or raises

    state = await relations.load(
        db,
        viewer,
        communities=[post.community_did],
        actors=[post.facts.author.did, *shared.authors.values()],
        subjects=[params.post, *shared.authors],
    )
    why = rules.may_see_post(post.facts, state.relations)
    if why is not None:
        raise not_found(f"post not found ({why.message})" if why.blocked_by else "post not found")
    body: dict[str, Any] = {"comments": shared.comments, "post": present(post, state)}
    if viewer is not None:
        body["comments"] = with_viewer(shared.comments, state, shared.authors)
    if shared.cursor is not None:
        body["cursor"] = shared.cursor
    return body


def _require_shown(why: Why | None, viewer: str | None) -> None:
    """Before building: only a private community's members (who must be signed in)
    can get further than the viewer-independent rules."""
    if why is None or (why is Why.PRIVATE and viewer is not None):
        return
    raise not_found("post not found")


async def _build_shared(
    db: Database, svc: ReadServices, post: HydratedPost, params: ThreadParams
) -> SharedThread:
    parent: Row | None = None
    if params.parent is not None:
        parent = await comment_sql.by_rkey(db, params.post, params.parent)
        if parent is None:
            raise XRPCError(404, "ParentNotFound", "no comment with that record key in the post")
    depth = params.depth - 1 if parent is not None else params.depth
    builder_depth = max(depth, 0)

    cursor: str | None = None
    rows = comment_sql.ThreadRows(top=[])
    page: comment_sql.PageNew | comment_sql.PageByUris | None = None
    if parent is None or params.depth > 0:
        if params.sort == "new":
            page = _new_page(svc.cursors, params, _parent_of(params, parent))
        else:
            page, cursor = await _ranked_page(db, svc, params, _parent_of(params, parent))
        rows = await comment_sql.fetch_thread(
            db,
            page,
            sort=params.sort,
            depth=builder_depth,
            per_parent=params.replies_per_parent,
            budget=MAX_REPLIES_PER_RESPONSE,
        )
    top = rows.top
    if isinstance(page, comment_sql.PageByUris):
        # Frozen order, live contents; a comment gone since the snapshot drops out.
        by_uri = {row["uri"]: row for row in top}
        top = [by_uri[uri] for uri in page.uris if uri in by_uri]
    elif rows.more:
        last = top[-1]
        cursor = svc.cursors.encode(
            NEW_CURSOR,
            {
                "p": _parent_of(params, parent),
                "t": last["ranked_at"].isoformat(),
                "u": last["uri"],
            },
        )
    builder = _TreeBuilder(
        depth=builder_depth,
        per_parent=params.replies_per_parent,
        children=rows.children,
        unexpanded=rows.unexpanded,
        blobs=svc.blobs,
    )
    comments = [node for row in top if (node := builder.node(row, 0)) is not None]
    if parent is not None:
        more = cursor is not None or (not comments and parent["reply_count"] > 0)
        comments = [builder.wrap(parent, comments, more)]
    read = [*rows.top, *(row for kids in rows.children.values() for row in kids)]
    if parent is not None:
        read.append(parent)
    about = frozenset(key for row in read for key in (row["uri"], row["commenter_did"]))
    return SharedThread(post, comments, cursor, live_comments(comments), about)


async def _with_did_authority(db: Database, params: ThreadParams) -> ThreadParams:
    """Rewrite ``at://<handle>/...`` to the DID form posts are stored under (404 if unknown)."""
    uri = AtUri.parse(params.post)
    if is_valid_did(uri.authority):
        return params
    account = await identity_sql.user_by_handle(db, uri.authority)
    if account is None:
        raise not_found("post not found")
    return replace(params, post=str(AtUri(account["did"], uri.collection, uri.rkey)))


# -- top level -------------------------------------------------------------------


def _new_page(codec: CursorCodec, params: ThreadParams, parent: str) -> comment_sql.PageNew:
    """The keyset page to read; its cursor is made once the rows are known."""
    after: tuple[datetime, str] | None = None
    if params.cursor is not None:
        payload = codec.decode(NEW_CURSOR, params.cursor)
        if payload.get("p") != parent:
            raise invalid_cursor("cursor belongs to a different thread")
        try:
            after = (datetime.fromisoformat(payload["t"]), str(payload["u"]))
        except (KeyError, TypeError, ValueError):
            raise invalid_cursor() from None
    return comment_sql.PageNew(parent, after, params.limit)


def _snapshot_key(params: ThreadParams, parent: str) -> str:
    return f"comments|{parent}|{params.sort}|{params.timeframe or 'all'}"


async def _ranked_page(
    db: Database, svc: ReadServices, params: ThreadParams, parent: str
) -> tuple[comment_sql.PageByUris, str | None]:
    codec, store = svc.cursors, svc.snapshots
    key = _snapshot_key(params, parent)
    offset = 0
    if params.cursor is None:
        span = TIMEFRAMES.get(params.timeframe or "all")
        cap = svc.snapshot_size

        since = utcnow() - span if span is not None else None

        def ranked(conn: Connection[Row]) -> list[str]:
            return comment_sql.top_level_ranked_uris(conn, parent, params.sort, since, cap)

        snapshot = await store.current(key, SqlCompute(db, ranked))
    else:
        payload = codec.decode(RANKED_CURSOR, params.cursor)
        snapshot_id, raw_offset = payload.get("s"), payload.get("o")
        if not isinstance(snapshot_id, str) or not isinstance(raw_offset, int) or raw_offset < 0:
            raise invalid_cursor()
        offset = raw_offset
        loaded = await store.load(snapshot_id)
        if loaded is None:
            raise invalid_cursor("cursor has expired; reload the thread")
        if loaded.key != key:
            raise invalid_cursor("cursor belongs to a different thread or sort")
        snapshot = loaded

    page_uris = list(snapshot.items[offset : offset + params.limit])
    end = offset + len(page_uris)
    cursor = None
    if end < len(snapshot.items):
        cursor = codec.encode(RANKED_CURSOR, {"s": snapshot.id, "o": end})
    return comment_sql.PageByUris(page_uris), cursor


# -- replies ---------------------------------------------------------------------


class _TreeBuilder:
    def __init__(
        self,
        *,
        depth: int,
        per_parent: int,
        children: Mapping[str, list[Row]],
        unexpanded: set[str],
        blobs: BlobUrls,
    ) -> None:
        self._unexpanded = unexpanded
        self._depth = depth
        self._per_parent = per_parent
        self._children = children
        self._blobs = blobs

    def node(self, row: Row, level: int) -> dict[str, Any] | None:
        """threadViewComment for ``row`` at ``level`` (0 = top level), or None to omit it."""
        deleted = rules.comment_withheld(facts.comment(row)) is Why.DELETED
        replies: list[dict[str, Any]] = []
        expand = row["uri"] not in self._unexpanded
        if level < self._depth and self._per_parent > 0 and expand:
            loaded = self._children.get(row["uri"], [])
            shown = loaded[: self._per_parent]
            for child in shown:
                node = self.node(child, level + 1)
                if node is not None:
                    replies.append(node)
            live_shown = sum(1 for child in shown if child["deleted_at"] is None)
            has_more = len(loaded) > self._per_parent or row["reply_count"] > live_shown
        else:
            # Depth, breadth 0 or the response budget exhausted: say whether
            # anything hangs below. A deleted comment is only ever loaded when
            # something does.
            has_more = row["deleted_at"] is not None or row["reply_count"] > 0
        if deleted and not replies and not has_more:
            return None
        return self.wrap(row, replies, has_more)

    def wrap(self, row: Row, replies: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
        return thread_view_comment(comment_view(row, blobs=self._blobs), replies, has_more)
