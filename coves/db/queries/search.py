"""Full-text post search (``feed.searchPosts``) on ``post_search`` (migration 0020).

The query text is parsed by ``websearch_to_tsquery``: words are ANDed,
``"quoted phrases"`` must appear in order, ``-word`` excludes, ``or`` makes
alternatives; English stemming and stop words apply. Matching is a GIN
lookup on ``post_search.document``; the viewer-independent read rules are
pre-filtered as in discover (``coves.db.queries.visibility``), and the
ordered URIs are what a search snapshot freezes. Only the newest ``WINDOW``
matches are ranked and sorted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from coves.db import Database
from coves.db.queries.visibility import COMMUNITY_EXISTS, LISTED, LIVE_AUTHOR, POST_COMMUNITY

SearchSort = Literal["relevance", "new", "top"]

# The newest matches a search ranks: a word in most posts must not make every
# search rank the whole table (with it the planner walks posts_new and probes
# each post's document, stopping here; a rare word is a GIN lookup).
WINDOW = 10_000

_OUTER_ORDER: dict[str, str] = {
    "relevance": "rank DESC, m.ranked_at DESC, m.uri DESC",
    "new": "m.ranked_at DESC, m.uri DESC",
    "top": "m.score DESC, m.ranked_at DESC, m.uri DESC",
}


def search_query(sort: str, *, community: bool, since: bool) -> str:
    """SQL text of a search (exposed for ``bench/explain.py``)."""
    scope = "p.community_did = %(community)s" if community else LISTED
    window = "AND p.ranked_at >= %(since)s" if since else ""
    return f"""
    SELECT m.uri, ts_rank_cd(m.document, m.query) AS rank FROM (
        SELECT p.uri, p.ranked_at, p.score, s.document, q.query
        FROM (SELECT websearch_to_tsquery('english', %(q)s) AS query) q
        JOIN post_search s ON s.document @@ q.query
        JOIN posts p ON p.uri = s.uri
        {POST_COMMUNITY}
        WHERE p.deleted_at IS NULL AND {LIVE_AUTHOR} AND {COMMUNITY_EXISTS} AND {scope} {window}
        ORDER BY p.ranked_at DESC, p.uri DESC
        LIMIT {WINDOW}
    ) m
    ORDER BY {_OUTER_ORDER[sort]}
    LIMIT %(limit)s
    """


async def has_terms(db: Database, q: str) -> bool:
    """Whether the query keeps any term once parsed (stop words alone match nothing)."""
    return bool(await db.fetchval("SELECT numnode(websearch_to_tsquery('english', %s)) > 0", (q,)))


async def search_uris(
    db: Database,
    q: str,
    sort: SearchSort,
    limit: int,
    *,
    community: str | None = None,
    since: datetime | None = None,
) -> list[str]:
    rows = await db.fetch(
        search_query(sort, community=community is not None, since=since is not None),
        {"q": q, "limit": limit, "community": community, "since": since},
    )
    return [row["uri"] for row in rows]
