"""Comment-thread reads (coves/comments.py assembles them into threads).

Every thread query returns comment rows joined with their author, so one
round trip per tree level is all a thread costs. Deleted comments keep their
rows; they are returned only while something still hangs under them (a
placeholder with nothing below it is noise), which the ``_VISIBLE`` filter
decides with one index probe per deleted row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from coves.db import Database, Row

Sort = Literal["hot", "top", "new"]

# ORDER BY clauses matching the comments_parent_{hot,top,new} indexes exactly,
# so a per-parent "ORDER BY ... LIMIT n" is an index range read.
_ORDER: dict[str, str] = {
    "hot": "c.hot_rank DESC, c.uri DESC",
    "top": "c.score DESC, c.ranked_at DESC, c.uri DESC",
    "new": "c.ranked_at DESC, c.uri DESC",
}
# The same order applied to the outer (already limited) result.
_OUTER_ORDER: dict[str, str] = {
    "hot": "r.hot_rank DESC, r.uri DESC",
    "top": "r.score DESC, r.ranked_at DESC, r.uri DESC",
    "new": "r.ranked_at DESC, r.uri DESC",
}

_VISIBLE = "(c.deleted_at IS NULL OR EXISTS (SELECT 1 FROM comments k WHERE k.parent_uri = c.uri))"

_COMMENT_COLUMNS = """
    c.uri, c.cid, c.commenter_did, c.root_uri, c.root_cid, c.parent_uri, c.parent_cid,
    c.content, c.facets, c.embed, c.labels, c.langs, c.record, c.created_at, c.ranked_at,
    c.indexed_at, c.edited_at, c.deleted_at, c.upvote_count, c.downvote_count, c.score,
    c.reply_count, c.hot_rank
"""

_AUTHOR_COLUMNS = """
    u.handle AS author_handle, u.display_name AS author_display_name,
    u.avatar AS author_avatar, u.pds_url AS author_pds_url,
    coalesce(u.active, true) AS author_active
"""


def _order(sort: str) -> str:
    try:
        return _ORDER[sort]
    except KeyError:
        raise ValueError(f"unknown comment sort {sort!r}") from None


async def fetch_thread_post(db: Database, uri: str) -> Row | None:
    """The root post with its author and community, or None when it is not indexed."""
    return await db.fetchrow(
        """
        SELECT p.uri, p.rkey, p.cid, p.community_did, p.author_did, p.title, p.content,
               p.facets, p.embed, p.labels, p.langs, p.record, p.created_at, p.indexed_at,
               p.edited_at, p.deleted_at, p.upvote_count, p.downvote_count, p.score,
               p.comment_count,
               u.handle AS author_handle, u.display_name AS author_display_name,
               u.avatar AS author_avatar, u.pds_url AS author_pds_url,
               coalesce(u.active, true) AS author_active,
               m.name AS community_name, m.display_name AS community_display_name,
               m.avatar AS community_avatar, m.deleted_at AS community_deleted_at,
               m.verification AS community_verification,
               cu.handle AS community_handle, cu.pds_url AS community_pds_url
        FROM posts p
        LEFT JOIN users u ON u.did = p.author_did
        LEFT JOIN communities m ON m.did = p.community_did
        LEFT JOIN users cu ON cu.did = p.community_did
        WHERE p.uri = %s
        """,
        (uri,),
    )


async def top_level_ranked_uris(
    db: Database, post_uri: str, sort: Sort, since: datetime | None, cap: int
) -> list[str]:
    """The ordered URIs of a post's top-level comments: what a hot/top snapshot freezes."""
    since_clause = "AND c.ranked_at >= %(since)s" if since is not None else ""
    rows = await db.fetch(
        f"""
        SELECT c.uri FROM comments c
        WHERE c.parent_uri = %(post)s AND {_VISIBLE} {since_clause}
        ORDER BY {_order(sort)}
        LIMIT %(cap)s
        """,
        {"post": post_uri, "since": since, "cap": cap},
    )
    return [row["uri"] for row in rows]


async def comments_by_uris(db: Database, uris: list[str]) -> list[Row]:
    """Hydrate comments (live counts) for a page of frozen URIs; order is the caller's."""
    if not uris:
        return []
    return await db.fetch(
        f"""
        SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
        FROM comments c
        LEFT JOIN users u ON u.did = c.commenter_did
        WHERE c.uri = ANY(%s) AND {_VISIBLE}
        """,
        (uris,),
    )


async def top_level_new_page(
    db: Database, post_uri: str, after: tuple[datetime, str] | None, limit: int
) -> list[Row]:
    """Newest-first top-level comments after a keyset position; ``limit`` rows at most."""
    keyset = "AND (c.ranked_at, c.uri) < (%(at)s, %(uri)s)" if after is not None else ""
    return await db.fetch(
        f"""
        SELECT {_COMMENT_COLUMNS}, {_AUTHOR_COLUMNS}
        FROM comments c
        LEFT JOIN users u ON u.did = c.commenter_did
        WHERE c.parent_uri = %(post)s AND {_VISIBLE} {keyset}
        ORDER BY c.ranked_at DESC, c.uri DESC
        LIMIT %(limit)s
        """,
        {
            "post": post_uri,
            "at": after[0] if after else None,
            "uri": after[1] if after else None,
            "limit": limit,
        },
    )


async def replies_for_parents(
    db: Database, parent_uris: list[str], sort: Sort, per_parent: int
) -> list[Row]:
    """Up to ``per_parent`` replies of each parent, in one statement.

    A LATERAL per parent turns each parent into one bounded index range read
    (``comments_parent_<sort>``), where a ``ROW_NUMBER() OVER (PARTITION BY
    parent_uri)`` window would read every reply of every parent before
    discarding most of them. Rows come back grouped by parent (in the order
    given) and sorted within each group.
    """
    if not parent_uris or per_parent <= 0:
        return []
    return await db.fetch(
        f"""
        SELECT r.*, {_AUTHOR_COLUMNS}
        FROM unnest(%(parents)s::text[]) WITH ORDINALITY AS p(uri, ord)
        CROSS JOIN LATERAL (
            SELECT {_COMMENT_COLUMNS}
            FROM comments c
            WHERE c.parent_uri = p.uri AND {_VISIBLE}
            ORDER BY {_order(sort)}
            LIMIT %(limit)s
        ) r
        LEFT JOIN users u ON u.did = r.commenter_did
        ORDER BY p.ord, {_OUTER_ORDER[sort]}
        """,
        {"parents": parent_uris, "limit": per_parent},
    )


async def viewer_votes(db: Database, viewer_did: str, subject_uris: list[str]) -> dict[str, Row]:
    """The viewer's effective vote on each subject that has one."""
    if not subject_uris:
        return {}
    rows = await db.fetch(
        """
        SELECT subject_uri, uri, direction FROM votes
        WHERE voter_did = %s AND subject_uri = ANY(%s) AND effective AND deleted_at IS NULL
        """,
        (viewer_did, subject_uris),
    )
    return {row["subject_uri"]: row for row in rows}
