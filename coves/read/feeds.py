"""Feeds: a community's, the viewer's timeline, discover and an actor's posts.

Each follows the read pipeline: the skeleton is a page of post URIs, ranked
pages read a frozen ordering (``coves.read.snapshots``) by offset, so paging
never repeats or skips a post while votes move ranks; the cursor (signed,
opaque) carries the snapshot id and offset, and the listing key is the cursor
kind, so a cursor cannot be replayed on another feed, sort, timeframe or
(for timelines) another viewer. ``new`` pages by keyset on ``(ranked_at,
uri)``, which new posts cannot disturb (they sort before the cursor). One
listing reaches at most ``FEED_SNAPSHOT_SIZE`` posts, like Reddit's 1000-item
listings. Skeletons only pre-filter by the viewer-independent rules; the
page's posts are then hydrated and :mod:`coves.read.rules` decides, per
viewer, which are shown (``coves.read.posts.shown_views``), so a page may
hold fewer posts than ``limit`` while a cursor still follows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from psycopg import Connection

from coves.clock import utcnow
from coves.cursors import invalid_cursor
from coves.db import Database, Row
from coves.db.queries import feeds as feed_sql
from coves.db.queries.feeds import FeedScope, Sort
from coves.errors import XRPCError
from coves.identity import IdentityResolver
from coves.params import choice_param, limit_param, one_str
from coves.read import actors, communities, keyset
from coves.read.posts import shown_views
from coves.read.services import ReadServices
from coves.read.snapshots import SqlCompute

SORTS: tuple[str, ...] = ("hot", "top", "new", "controversial")
TIMEFRAMES: dict[str, timedelta | None] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
    "all": None,
}
DEFAULT_LIMIT = 15
MAX_LIMIT = 50
ACTOR_FILTERS: tuple[str, ...] = ("posts_with_replies", "posts_no_replies", "posts_with_media")
EXPIRED = "this listing has expired; start again from the first page (omit cursor)"


@dataclass(frozen=True)
class FeedParams:
    sort: Sort
    timeframe: str  # "" unless sort is top
    limit: int
    cursor: str | None


def feed_params(params: Mapping[str, Any]) -> FeedParams:
    """sort/timeframe/limit/cursor shared by every feed (400 on anything invalid)."""
    sort = cast(Sort, choice_param(params, "sort", SORTS, "hot"))
    timeframe = choice_param(params, "timeframe", tuple(TIMEFRAMES), None)
    limit = limit_param(params, default=DEFAULT_LIMIT, high=MAX_LIMIT)
    cursor = params.get("cursor")
    if isinstance(cursor, list):
        cursor = cursor[0] if len(cursor) == 1 else ""
    if cursor is not None and not isinstance(cursor, str):
        raise invalid_cursor()
    return FeedParams(
        sort=sort,
        timeframe=(timeframe or "day") if sort == "top" else "",
        limit=limit,
        cursor=cursor or None,
    )


# A feed's scope, found on the connection the page's statements then run on (a
# timeline's subscriptions are one more statement in the same thread hop).
ScopeSource = Callable[[Connection[Row]], FeedScope]


def fixed(scope: FeedScope) -> ScopeSource:
    def source(_conn: Connection[Row]) -> FeedScope:
        return scope

    return source


async def feed_page(
    svc: ReadServices,
    db: Database,
    base: str,
    scope: ScopeSource,
    fp: FeedParams,
    *,
    viewer: str | None,
) -> dict[str, Any]:
    """One page of a feed: ``{"feed": [{"post": postView}], "cursor"?}``.

    ``base`` names the listing (``kind:owner``, the owner being the community
    or author DID or the timeline's viewer); ``scope`` is only called when
    the database is actually read (a timeline's subscriptions are not looked
    up for pages served from a snapshot), in the same thread hop.
    """
    if fp.sort == "new":
        uris, cursor = await _new_page(svc, db, scope, base, fp)
    else:
        uris, cursor = await _ranked_page(svc, db, scope, base, fp)
    views = await shown_views(svc.posts, db, uris, viewer)
    body: dict[str, Any] = {"feed": [{"post": view} for view in views]}
    if cursor is not None:
        body["cursor"] = cursor
    return body


async def _new_page(
    svc: ReadServices, db: Database, scope: ScopeSource, base: str, fp: FeedParams
) -> tuple[list[str], str | None]:
    kind = f"new:{base}"
    after: tuple[datetime, str] | None = None
    if fp.cursor is not None:
        after = keyset.decode(svc.cursors, kind, fp.cursor)

    def page(conn: Connection[Row]) -> list[tuple[str, datetime]]:
        return feed_sql.new_page(conn, scope(conn), fp.limit + 1, after)

    rows = await db.run(page, transaction=False)
    more = len(rows) > fp.limit
    rows = rows[: fp.limit]
    cursor = None
    if more and rows:
        last_uri, last_at = rows[-1]
        cursor = keyset.encode(svc.cursors, kind, last_at, last_uri)
    return [uri for uri, _ in rows], cursor


async def _ranked_page(
    svc: ReadServices, db: Database, scope: ScopeSource, base: str, fp: FeedParams
) -> tuple[list[str], str | None]:
    key = f"{base}:{fp.sort}:{fp.timeframe}"
    kind = f"snap:{key}"
    if fp.cursor is not None:
        payload = svc.cursors.decode(kind, fp.cursor)
        snapshot_id, offset = payload.get("s"), payload.get("o")
        if not isinstance(snapshot_id, str) or type(offset) is not int or offset < 0:
            raise invalid_cursor()
        snapshot = await svc.snapshots.load(snapshot_id)
        if snapshot is None:
            raise invalid_cursor(EXPIRED)
        if snapshot.key != key:
            raise invalid_cursor("cursor belongs to a different listing")
    else:
        offset = 0
        window = TIMEFRAMES.get(fp.timeframe) if fp.sort == "top" else None
        since = utcnow() - window if window is not None else None

        def ranked(conn: Connection[Row]) -> list[str]:
            return feed_sql.ranked_uris(conn, scope(conn), fp.sort, svc.snapshot_size, since)

        snapshot = await svc.first_pages.current(key, SqlCompute(db, ranked))
    end = offset + fp.limit
    uris = list(snapshot.items[offset:end])
    cursor = None
    if end < len(snapshot.items):
        cursor = svc.cursors.encode(kind, {"s": snapshot.id, "o": end})
    return uris, cursor


# -- the feeds ----------------------------------------------------------------------------


async def community_feed(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    """``feed.getCommunity``: 404 ``CommunityNotFound`` when the viewer may not read it."""
    fp = feed_params(params)
    ident = one_str(params, "community", required=True)
    assert ident is not None
    row = await communities.resolve_cached(db, svc, ident)
    if row is None or await communities.may_read(db, viewer, row) is not None:
        raise XRPCError(404, "CommunityNotFound", "community not found")
    scope = FeedScope("community", row["did"])
    return await feed_page(svc, db, f"community:{row['did']}", fixed(scope), fp, viewer=viewer)


async def timeline(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str
) -> dict[str, Any]:
    """``feed.getTimeline``: the communities the viewer subscribes to and does not block."""
    fp = feed_params(params)

    def scope(conn: Connection[Row]) -> FeedScope:
        return FeedScope("timeline", feed_sql.timeline_communities(conn, viewer))

    return await feed_page(svc, db, f"timeline:{viewer}", scope, fp, viewer=viewer)


async def discover(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    """``feed.getDiscover``: every public community."""
    fp = feed_params(params)
    return await feed_page(svc, db, "discover:", fixed(FeedScope("discover")), fp, viewer=viewer)


async def actor_posts(
    db: Database,
    svc: ReadServices,
    identity: IdentityResolver | None,
    params: Mapping[str, Any],
    viewer: str | None,
) -> dict[str, Any]:
    """``actor.getPosts``: an account's posts, optionally in one community
    (``community``, any identifier form) or with images or video only
    (``filter=posts_with_media``; Coves posts are never replies, so the other
    filters change nothing)."""
    fp = feed_params(params)
    row = await actors.visible_actor(db, identity, params)
    did = row["did"]
    media = choice_param(params, "filter", ACTOR_FILTERS, None) == "posts_with_media"
    community = ""
    ident = one_str(params, "community")
    if ident is not None:
        found = await communities.resolve_cached(db, svc, ident)
        if found is None:
            return {"feed": []}
        community = found["did"]
    scope = FeedScope("author", did, community=community, media=media)
    base = f"author:{did}:{community}:{int(media)}"
    return await feed_page(svc, db, base, fixed(scope), fp, viewer=viewer)
