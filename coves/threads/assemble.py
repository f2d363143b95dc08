"""Comment threads for getComments: top-level paging and per-level reply loading.

Cost per request is bounded by the tree's depth, not its size: the post
(the read API's hydrator), then one connection checkout for the page of
top-level comments and one statement per reply level (each reads at most
``repliesPerParent + 1`` replies of every parent on the level; loading stops
at the first empty level or when the response budget is spent), and with a
viewer one statement for their votes. Identical requests within a moment
share one build (``ReadServices.comment_threads``); viewer state is overlaid per request.

Top-level paging. ``new`` pages by keyset on (ranked_at, uri), which is
stable by construction. ``hot`` and ``top`` move while a client pages, so the
first page freezes the ordered top-level URIs in a listing snapshot
(coves.snapshots) and later pages read that frozen order by offset; contents
are hydrated live, so counts stay current. A snapshot holds at most
``FEED_SNAPSHOT_SIZE`` top-level comments; an expired snapshot is a 400
``InvalidCursor`` (the client reloads the thread).

Deleted comments are shown as placeholders only while something visible
hangs under them; a deleted comment whose replies are all gone is omitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coves.atproto.syntax import AtUri, is_valid_did
from coves.auth.base import Viewer
from coves.clock import utcnow
from coves.cursors import CursorCodec, invalid_cursor
from coves.db import Row
from coves.db.queries import comments as comment_sql
from coves.db.queries import identity as identity_sql
from coves.errors import not_found
from coves.feeds import TIMEFRAMES, ReadServices
from coves.postcache import HydratedPost
from coves.threads.params import ThreadParams
from coves.views.blobs import BlobUrls
from coves.views.comment import (
    comment_view,
    live_uris,
    thread_view_comment,
    with_viewer_state,
)
from coves.views.post import PostVote, with_viewer

if TYPE_CHECKING:
    from coves.context import AppContext

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
    live_uris: list[str]  # comments viewer state applies to


async def get_comments(
    ctx: AppContext, params: ThreadParams, viewer: Viewer | None
) -> dict[str, Any]:
    """The getComments response; raises 404 NotFound or 400 InvalidCursor."""
    services = ctx.read
    params = await _with_did_authority(ctx, params)
    if params.cursor is not None:
        # Refuse a forged or foreign cursor before any query (checked again on use).
        kind = NEW_CURSOR if params.sort == "new" else RANKED_CURSOR
        services.cursors.decode(kind, params.cursor)

    async def build() -> SharedThread:
        return await _build_shared(ctx, services, params)

    shared = await services.comment_threads.get_or_load(params, build)
    assert shared is not None  # build() returns a thread or raises

    post, comments = shared.post.view, shared.comments
    if viewer is not None:
        # One query for the viewer's votes on the post and every live comment shown.
        votes = await comment_sql.viewer_votes(ctx.db, viewer.did, [params.post, *shared.live_uris])
        post_vote = votes.get(params.post)
        post = with_viewer(
            post, PostVote(post_vote["direction"], post_vote["uri"]) if post_vote else None
        )
        comments = with_viewer_state(comments, votes)
    body: dict[str, Any] = {"comments": comments, "post": post}
    if shared.cursor is not None:
        body["cursor"] = shared.cursor
    return body


async def _build_shared(
    ctx: AppContext, services: ReadServices, params: ThreadParams
) -> SharedThread:
    post = (await services.posts.load([params.post])).get(params.post)
    if post is None or post.deleted_at is not None or post.unavailable is not None:
        raise not_found("post not found")

    page: comment_sql.PageNew | comment_sql.PageByUris
    cursor: str | None
    if params.sort == "new":
        page, cursor = _new_page(services.cursors, params)
    else:
        page, cursor = await _ranked_page(ctx, services, params)
    rows = await comment_sql.fetch_thread(
        ctx.db,
        page,
        sort=params.sort,
        depth=params.depth,
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
        cursor = services.cursors.encode(
            NEW_CURSOR,
            {"p": params.post, "t": last["ranked_at"].isoformat(), "u": last["uri"]},
        )

    builder = _TreeBuilder(
        params=params, children=rows.children, unexpanded=rows.unexpanded, blobs=services.blobs
    )
    comments = [node for row in top if (node := builder.node(row, 0)) is not None]
    return SharedThread(post, comments, cursor, live_uris(comments))


async def _with_did_authority(ctx: AppContext, params: ThreadParams) -> ThreadParams:
    """Rewrite ``at://<handle>/...`` to the DID form posts are stored under (404 if unknown)."""
    uri = AtUri.parse(params.post)
    if is_valid_did(uri.authority):
        return params
    account = await identity_sql.user_by_handle(ctx.db, uri.authority)
    if account is None:
        raise not_found("post not found")
    return replace(params, post=str(AtUri(account["did"], uri.collection, uri.rkey)))


# -- top level -------------------------------------------------------------------


def _new_page(codec: CursorCodec, params: ThreadParams) -> tuple[comment_sql.PageNew, None]:
    """The keyset page to read; its cursor is made once the rows are known."""
    after: tuple[datetime, str] | None = None
    if params.cursor is not None:
        payload = codec.decode(NEW_CURSOR, params.cursor)
        if payload.get("p") != params.post:
            raise invalid_cursor("cursor belongs to a different thread")
        try:
            after = (datetime.fromisoformat(payload["t"]), str(payload["u"]))
        except (KeyError, TypeError, ValueError):
            raise invalid_cursor() from None
    return comment_sql.PageNew(params.post, after, params.limit), None


def _snapshot_key(params: ThreadParams) -> str:
    return f"comments|{params.post}|{params.sort}|{params.timeframe or 'all'}"


async def _ranked_page(
    ctx: AppContext, services: ReadServices, params: ThreadParams
) -> tuple[comment_sql.PageByUris, str | None]:
    codec, store = services.cursors, services.snapshots
    key = _snapshot_key(params)
    offset = 0
    if params.cursor is None:
        span = TIMEFRAMES.get(params.timeframe or "all")
        cap = services.snapshot_size

        async def compute() -> list[str]:
            since = utcnow() - span if span is not None else None
            return await comment_sql.top_level_ranked_uris(
                ctx.db, params.post, params.sort, since, cap
            )

        snapshot = await store.current(key, compute)
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
        params: ThreadParams,
        children: Mapping[str, list[Row]],
        unexpanded: set[str],
        blobs: BlobUrls,
    ) -> None:
        self._unexpanded = unexpanded
        self._depth = params.depth
        self._per_parent = params.replies_per_parent
        self._children = children
        self._blobs = blobs

    def node(self, row: Row, level: int) -> dict[str, Any] | None:
        """threadViewComment for ``row`` at ``level`` (0 = top level), or None to omit it."""
        deleted = row["deleted_at"] is not None
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
            # anything hangs below.
            # A deleted comment is only ever loaded when something does.
            has_more = deleted or row["reply_count"] > 0
        if deleted and not replies and not has_more:
            return None
        view = comment_view(row, blobs=self._blobs)
        return thread_view_comment(view, replies, has_more)
