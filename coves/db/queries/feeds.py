"""Feed queries: ranked URI lists (for snapshots) and keyset pages for ``new``.

The functions run on a connection, so a request composes them with what comes
before and after (the timeline's subscriptions, the snapshot's insert) in one
``Database.run``: one thread hop.

Every shape walks one of the ``posts_*`` indexes in its order and stops at
the limit (see ``bench/explain.py``): community feeds use the per-community
indexes, discover the global ones (joining communities per row to filter),
timelines one bounded index scan per subscribed community (LATERAL) merged,
author feeds ``posts_author``. Ranked listings read at most the snapshot size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection

from coves.db import Row
from coves.db.queries.visibility import (
    COMMUNITY_EXISTS,
    LISTED,
    LIVE_AUTHOR,
    NOT_BLOCKED,
    POST_COMMUNITY,
)

Sort = Literal["hot", "top", "new", "controversial"]
ScopeKind = Literal["community", "discover", "timeline", "author"]

ORDER: dict[str, str] = {
    "hot": "p.hot_rank DESC, p.uri DESC",
    "top": "p.score DESC, p.ranked_at DESC, p.uri DESC",
    "controversial": "p.controversy_rank DESC, p.ranked_at DESC, p.uri DESC",
    "new": "p.ranked_at DESC, p.uri DESC",
}

# Deactivated authors are rare: an anti-join on the partial index users_inactive.
_LIVE_AUTHOR = LIVE_AUTHOR
# The sort columns of each order: what the per-community indexes cover.
_KEYS: dict[str, str] = {
    "hot": "p.hot_rank",
    "top": "p.score, p.ranked_at",
    "controversial": "p.controversy_rank, p.ranked_at",
    "new": "p.ranked_at",
}
_LIVE_COMMUNITY = POST_COMMUNITY
_COMMUNITY_OK = f" AND {COMMUNITY_EXISTS}"
MEDIA_EMBEDS = ("social.coves.embed.images", "social.coves.embed.video")


@dataclass(frozen=True)
class FeedScope:
    """Which posts a feed draws from. ``value``: community/author DID, or the
    timeline's community DIDs."""

    kind: ScopeKind
    value: str | tuple[str, ...] = ""
    community: str = ""  # author feeds: only this community's posts
    media: bool = False  # author feeds: only posts embedding images or video


def _shape(scope: FeedScope) -> tuple[str, str, dict[str, Any]]:
    """FROM/JOIN text, extra WHERE text and parameters for a non-timeline scope."""
    if scope.kind == "community":
        return "posts p", " AND p.community_did = %(scope)s", {"scope": scope.value}
    if scope.kind == "discover":
        return f"posts p {_LIVE_COMMUNITY}", f"{_COMMUNITY_OK} AND {LISTED}", {}
    if scope.kind == "author":
        # Private communities' posts are kept: the rules show them to members.
        where = _COMMUNITY_OK + " AND p.author_did = %(scope)s"
        params: dict[str, Any] = {"scope": scope.value}
        if scope.community:
            where += " AND p.community_did = %(community)s"
            params["community"] = scope.community
        if scope.media:
            where += " AND p.embed->>'$type' = ANY(%(media)s::text[])"
            params["media"] = list(MEDIA_EMBEDS)
        return f"posts p {_LIVE_COMMUNITY}", where, params
    raise ValueError(scope.kind)


def _query(scope: FeedScope, sort: str, extra: str) -> str:
    order = ORDER[sort]
    if scope.kind == "timeline":
        # One index-only scan per subscribed community (its columns are all in
        # the per-community index of this sort), the best ``limit`` of the
        # union, then the heap and the author check for those rows only.
        return f"""
        SELECT p.uri, p.ranked_at
        FROM (
            SELECT x.uri FROM unnest(%(communities)s::text[]) AS s(did)
            CROSS JOIN LATERAL (
                SELECT p.uri, {_KEYS[sort]}
                FROM posts p
                WHERE p.community_did = s.did AND p.deleted_at IS NULL {extra}
                ORDER BY {order}
                LIMIT %(limit)s
            ) x
            ORDER BY {order.replace("p.", "x.")}
            LIMIT %(limit)s
        ) best
        JOIN posts p ON p.uri = best.uri
        WHERE {_LIVE_AUTHOR}
        ORDER BY {order}
        """
    source, where, _ = _shape(scope)
    return f"""
    SELECT p.uri, p.ranked_at FROM {source}
    WHERE p.deleted_at IS NULL AND {_LIVE_AUTHOR} {where} {extra}
    ORDER BY {order}
    LIMIT %(limit)s
    """


def _params(scope: FeedScope) -> dict[str, Any]:
    if scope.kind == "timeline":
        return {"communities": list(scope.value)}
    return _shape(scope)[2]


def ranked_query(scope: FeedScope, sort: Sort, *, since: bool) -> str:
    """SQL text of a ranked listing (exposed for ``bench/explain.py``)."""
    return _query(scope, sort, " AND p.ranked_at >= %(since)s" if since else "")


def new_query(scope: FeedScope, *, after: bool) -> str:
    """SQL text of a ``new`` page (exposed for ``bench/explain.py``)."""
    extra = " AND (p.ranked_at, p.uri) < (%(after_t)s, %(after_u)s)" if after else ""
    return _query(scope, "new", extra)


def params_for(
    scope: FeedScope,
    limit: int,
    since: datetime | None = None,
    after: tuple[datetime, str] | None = None,
) -> dict[str, Any]:
    params = {**_params(scope), "limit": limit}
    if since is not None:
        params["since"] = since
    if after is not None:
        params["after_t"], params["after_u"] = after
    return params


def ranked_uris(
    conn: Connection[Row], scope: FeedScope, sort: Sort, limit: int, since: datetime | None = None
) -> list[str]:
    """The first ``limit`` post URIs of a ranked listing, best first."""
    if scope.kind == "timeline" and not scope.value:
        return []
    rows = conn.execute(
        ranked_query(scope, sort, since=since is not None),
        params_for(scope, limit, since),
        prepare=True,
    ).fetchall()
    return [row["uri"] for row in rows]


def new_page(
    conn: Connection[Row], scope: FeedScope, limit: int, after: tuple[datetime, str] | None
) -> list[tuple[str, datetime]]:
    """Up to ``limit`` (uri, ranked_at) newest first, strictly after the keyset ``after``."""
    if scope.kind == "timeline" and not scope.value:
        return []
    rows = conn.execute(
        new_query(scope, after=after is not None),
        params_for(scope, limit, after=after),
        prepare=True,
    ).fetchall()
    return [(row["uri"], row["ranked_at"]) for row in rows]


TIMELINE_COMMUNITIES_SQL = f"""
SELECT DISTINCT s.community_did AS did
FROM subscriptions s
JOIN communities c ON c.did = s.community_did
LEFT JOIN users cu ON cu.did = s.community_did
WHERE s.user_did = %(viewer)s AND s.deleted_at IS NULL
  AND {COMMUNITY_EXISTS} AND {NOT_BLOCKED}
ORDER BY s.community_did
"""


def timeline_communities(conn: Connection[Row], viewer: str) -> tuple[str, ...]:
    """Distinct live, visible communities ``viewer`` subscribes to and does not block."""
    rows = conn.execute(TIMELINE_COMMUNITIES_SQL, {"viewer": viewer}, prepare=True).fetchall()
    return tuple(row["did"] for row in rows)
