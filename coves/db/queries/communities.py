"""Community reads: identifier lookups, listings and per-viewer state."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from coves.db import Database, Row
from coves.db.queries.visibility import COMMUNITY_EXISTS, listing

ListSort = Literal["popular", "active", "new", "alphabetical"]

COLUMNS = """
c.did, c.name, c.display_name, c.description, c.description_facets, c.avatar, c.banner,
c.created_by, c.hosted_by, c.visibility, c.allow_external_discovery, c.moderation_type,
c.content_warnings, c.rules, c.categories, c.language, cs.subscriber_count, cs.post_count,
cs.last_post_at, c.record_cid, c.created_at, c.indexed_at, c.updated_at, c.verification,
c.deleted_at,
cu.handle, cu.pds_url, coalesce(cu.active, true) AS active, cu.account_status
"""
# Every community has a stats row (a trigger creates it with the community).
_FROM = (
    "FROM communities c JOIN community_stats cs ON cs.did = c.did"
    " LEFT JOIN users cu ON cu.did = c.did"
)
# Matches the partial listing indexes (deleted_at IS NULL AND verified); the
# popular and active orders walk community_stats' indexes and filter by it.
VISIBLE = COMMUNITY_EXISTS


async def by_did(db: Database, did: str) -> Row | None:
    return await db.fetchrow(f"SELECT {COLUMNS} {_FROM} WHERE c.did = %s", (did,))


async def by_handle(db: Database, handle: str) -> Row | None:
    return await db.fetchrow(
        f"SELECT {COLUMNS} {_FROM} WHERE cu.handle = %s ORDER BY c.did LIMIT 1", (handle,)
    )


async def by_scoped_name(db: Database, name: str, hosted_by: str, domain: str) -> Row | None:
    """``!name@domain``: a community of that name hosted by ``hosted_by`` or whose
    handle lives under ``domain``; visible matches first."""
    return await db.fetchrow(
        f"""
        SELECT {COLUMNS} {_FROM}
        WHERE lower(c.name) = %(name)s
          AND (c.hosted_by = %(hosted)s OR cu.handle = %(name)s || '.community.' || %(domain)s
               OR right(cu.handle, length(%(domain)s) + 1) = '.' || %(domain)s)
        ORDER BY ({VISIBLE}) DESC, c.did
        LIMIT 1
        """,
        {"name": name, "hosted": hosted_by, "domain": domain},
    )


_SORTS: dict[str, tuple[str, str, str]] = {
    # sort -> (key expression, ORDER BY, keyset predicate after the cursor)
    "popular": (
        "cs.subscriber_count",
        "cs.subscriber_count DESC, cs.did",
        "(cs.subscriber_count < %(k)s::integer"
        " OR (cs.subscriber_count = %(k)s::integer AND cs.did > %(d)s))",
    ),
    "new": (
        "c.created_at",
        "c.created_at DESC, c.did",
        "(c.created_at < %(k)s::timestamptz"
        " OR (c.created_at = %(k)s::timestamptz AND c.did > %(d)s))",
    ),
    "alphabetical": (
        "lower(c.name)",
        "lower(c.name), c.did",
        "(lower(c.name), c.did) > (%(k)s::text, %(d)s)",
    ),
    "active": (
        "cs.last_post_at",
        "cs.last_post_at DESC NULLS LAST, cs.did",
        "(CASE WHEN %(k)s::timestamptz IS NULL THEN cs.last_post_at IS NULL AND cs.did > %(d)s"
        " ELSE cs.last_post_at < %(k)s::timestamptz OR cs.last_post_at IS NULL"
        " OR (cs.last_post_at = %(k)s::timestamptz AND cs.did > %(d)s) END)",
    ),
}


async def list_page(
    db: Database,
    *,
    sort: ListSort,
    limit: int,
    after: tuple[Any, str] | None,
    visibility: str | None,
    viewer: str | None,
    subscribed_only: bool,
    category: str | None = None,
    language: str | None = None,
) -> list[Row]:
    """Up to ``limit`` communities after the keyset ``after`` (key value, did).

    Each row carries ``sort_key`` for the next cursor.
    """
    key, order, keyset = _SORTS[sort]
    where = [VISIBLE, listing(visibility, viewer, subscribed_only)]
    params: dict[str, Any] = {
        "limit": limit,
        "viewer": viewer,
        "visibility": visibility or "public",
        "category": category,
        "language": language,
    }
    if category is not None:
        where.append("c.categories @> ARRAY[%(category)s::text]")
    if language is not None:
        where.append("lower(c.language) = lower(%(language)s)")
    if after is not None:
        where.append(keyset)
        params["k"], params["d"] = after
    return await db.fetch(
        f"SELECT {COLUMNS}, {key} AS sort_key {_FROM} WHERE {' AND '.join(where)}"
        f" ORDER BY {order} LIMIT %(limit)s",
        params,
    )


SEARCH_SQL = f"""
SELECT r.*, count(*) OVER () AS total FROM (
    SELECT {COLUMNS},
           (CASE WHEN lower(c.name) = %(term)s THEN 4
                 WHEN %(term)s <> '' AND left(lower(c.name), length(%(term)s)) = %(term)s THEN 3
                 WHEN %(term)s <> '' AND strpos(lower(c.name), %(term)s) > 0 THEN 2
                 WHEN numnode(plainto_tsquery('simple', %(words)s)) > 0
                      AND to_tsvector('simple', c.name || ' ' || coalesce(c.display_name, '')
                                      || ' ' || coalesce(c.description, ''))
                          @@ plainto_tsquery('simple', %(words)s) THEN 1
                 ELSE 0 END) AS tier,
           m.inter::float8
             / greatest(cardinality(c.search_trigrams) + %(qn)s - m.inter, 1) AS similarity
    {_FROM}
    CROSS JOIN LATERAL (
        SELECT count(*) AS inter FROM unnest(c.search_trigrams) t WHERE t = ANY(%(q)s::text[])
    ) m
    WHERE c.search_trigrams && %(q)s::text[] AND {VISIBLE} AND {{listing}}
) r
WHERE r.tier > 0 OR r.similarity >= %(min)s
ORDER BY r.tier DESC, r.similarity DESC, r.subscriber_count DESC, r.did
LIMIT %(limit)s OFFSET %(offset)s
"""


async def search_page(
    db: Database,
    *,
    trigrams: list[str],
    term: str,
    limit: int,
    offset: int,
    visibility: str | None,
    viewer: str | None,
    category: str | None = None,
    language: str | None = None,
    min_similarity: float = 0.1,
) -> list[Row]:
    """Communities matching ``term``, best first: an exact name, then names starting
    with it, then names containing it, then communities with every word of it
    anywhere in their name, display name or description, then fuzzy (trigram)
    matches; within a tier by similarity, then subscribers.

    Candidates come from the trigram GIN index (every tier shares trigrams with the
    query). Each row carries ``total``, the number of matches over all pages.
    """
    filters = [listing(visibility, viewer, subscribed_only=False)]
    if category is not None:
        filters.append("c.categories @> ARRAY[%(category)s::text]")
    if language is not None:
        filters.append("lower(c.language) = lower(%(language)s)")
    return await db.fetch(
        SEARCH_SQL.replace("{listing}", " AND ".join(filters)),
        {
            "q": trigrams,
            "qn": len(trigrams),
            "term": term,
            "words": term,
            "limit": limit,
            "offset": offset,
            "viewer": viewer,
            "visibility": visibility or "public",
            "category": category,
            "language": language,
            "min": min_similarity,
        },
    )


def blocked_sql(*, after: bool) -> str:
    keyset = "AND (b.created_at, b.uri) < (%(at)s, %(uri)s)" if after else ""
    return f"""
    SELECT b.uri, b.community_did, b.record_cid, b.created_at FROM blocks b
    WHERE b.user_did = %(viewer)s AND b.deleted_at IS NULL {keyset}
    ORDER BY b.created_at DESC, b.uri DESC
    LIMIT %(limit)s
    """


BLOCKED_SQL = blocked_sql(after=False)


async def blocked_page(
    db: Database, viewer: str, limit: int, after: tuple[datetime, str] | None
) -> list[Row]:
    """The viewer's live community blocks, newest first, after the keyset ``after``
    (blocks_user_newest)."""
    return await db.fetch(
        blocked_sql(after=after is not None),
        {
            "viewer": viewer,
            "limit": limit,
            "at": after[0] if after else None,
            "uri": after[1] if after else None,
        },
    )


async def viewer_state(
    db: Database, viewer: str, dids: list[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(subscription URI, block URI) by community DID among ``dids`` for ``viewer``."""
    rows = await db.fetch(
        """
        SELECT community_did, uri, 's' AS kind FROM subscriptions
         WHERE user_did = %(viewer)s AND community_did = ANY(%(dids)s) AND deleted_at IS NULL
        UNION ALL
        SELECT community_did, uri, 'b' FROM blocks
         WHERE user_did = %(viewer)s AND community_did = ANY(%(dids)s) AND deleted_at IS NULL
        ORDER BY uri
        """,
        {"viewer": viewer, "dids": dids},
    )
    subscribed = {r["community_did"]: r["uri"] for r in rows if r["kind"] == "s"}
    blocked = {r["community_did"]: r["uri"] for r in rows if r["kind"] == "b"}
    return subscribed, blocked
