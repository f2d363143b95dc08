"""``feed.searchPosts``: full-text search over posts, under the rules of every feed.

The skeleton is the ordered list of matching URIs (PostgreSQL full-text
search, ``coves.db.queries.search``), frozen in a listing snapshot on the
first page so paging is stable whatever the sort; pages are hydrated and
decided by :mod:`coves.read.rules` per viewer like any feed. Without
``community`` only public communities are searched (as in discover); with
it, any community the viewer may read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, cast

from coves.clock import utcnow
from coves.cursors import invalid_cursor
from coves.db import Database
from coves.db.queries import search as search_sql
from coves.db.queries.search import SearchSort
from coves.errors import invalid_request
from coves.params import choice_param, limit_param, one_str
from coves.read import communities
from coves.read.feeds import EXPIRED, TIMEFRAMES
from coves.read.posts import shown_views
from coves.read.services import ReadServices

SORTS: tuple[str, ...] = ("relevance", "new", "top")
DEFAULT_LIMIT, MAX_LIMIT = 15, 50
MAX_QUERY_LENGTH = 500
CURSOR = "search.posts"


async def search_posts(
    db: Database, svc: ReadServices, params: Mapping[str, Any], viewer: str | None
) -> dict[str, Any]:
    q = one_str(params, "q", required=True)
    assert q is not None
    if len(q) > MAX_QUERY_LENGTH:
        raise invalid_request(f"q must be at most {MAX_QUERY_LENGTH} characters")
    sort = cast(SearchSort, choice_param(params, "sort", SORTS, "relevance"))
    timeframe = choice_param(params, "timeframe", tuple(TIMEFRAMES), None)
    timeframe = (timeframe or "all") if sort == "top" else ""
    limit = limit_param(params, default=DEFAULT_LIMIT, high=MAX_LIMIT)
    cursor = one_str(params, "cursor")

    community: str | None = None
    ident = one_str(params, "community")
    if ident is not None:
        row = await communities.resolve_cached(db, svc, ident)
        if row is None or await communities.may_read(db, viewer, row) is not None:
            return {"feed": []}
        community = row["did"]

    digest = hashlib.sha256(f"{q}\x00{community}".encode()).hexdigest()[:24]
    key = f"search:{digest}:{sort}:{timeframe}"
    kind = f"{CURSOR}:{key}"
    if cursor is not None:
        payload = svc.cursors.decode(kind, cursor)
        snapshot_id, offset = payload.get("s"), payload.get("o")
        if not isinstance(snapshot_id, str) or type(offset) is not int or offset < 0:
            raise invalid_cursor()
        snapshot = await svc.snapshots.load(snapshot_id)
        if snapshot is None:
            raise invalid_cursor(EXPIRED)
        if snapshot.key != key:
            raise invalid_cursor("cursor belongs to a different search")
    else:
        offset = 0
        if not await search_sql.has_terms(db, q):
            return {"feed": []}
        window = TIMEFRAMES.get(timeframe) if timeframe else None
        since = utcnow() - window if window is not None else None

        async def compute() -> list[str]:
            return await search_sql.search_uris(
                db, q, sort, svc.snapshot_size, community=community, since=since
            )

        snapshot = await svc.first_pages.current(key, compute)
    end = offset + limit
    views = await shown_views(svc.posts, db, list(snapshot.items[offset:end]), viewer)
    body: dict[str, Any] = {"feed": [{"post": view} for view in views]}
    if end < len(snapshot.items):
        body["cursor"] = svc.cursors.encode(kind, {"s": snapshot.id, "o": end})
    return body
