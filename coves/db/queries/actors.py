"""Actor reads: profile stats, user blocks, an actor's comments."""

from __future__ import annotations

from datetime import datetime

from coves.db import Database, Row

STATS_SQL = """
SELECT
    (SELECT count(*) FROM posts WHERE author_did = %(did)s AND deleted_at IS NULL)
        AS post_count,
    (SELECT count(*) FROM comments WHERE commenter_did = %(did)s AND deleted_at IS NULL)
        AS comment_count,
    (SELECT count(*) FROM subscriptions WHERE user_did = %(did)s AND deleted_at IS NULL)
        AS community_count,
    (SELECT count(DISTINCT community_did) FROM posts
      WHERE author_did = %(did)s AND deleted_at IS NULL) AS membership_count,
    (SELECT coalesce(sum(score), 0) FROM posts WHERE author_did = %(did)s AND deleted_at IS NULL)
  + (SELECT coalesce(sum(score), 0) FROM comments
      WHERE commenter_did = %(did)s AND deleted_at IS NULL) AS reputation
"""


async def stats(db: Database, did: str) -> Row:
    """Live posts, comments and subscriptions; communities posted in; the summed score
    of the actor's live posts and comments. Index-only on posts_author,
    comments_commenter (which carry the score) and subscriptions_user."""
    row = await db.fetchrow(STATS_SQL, {"did": did})
    assert row is not None
    return row


async def block_between(db: Database, viewer: str, actor: str) -> Row:
    """``blocking`` (the viewer's block record URI, or NULL) and ``blocked_by``."""
    row = await db.fetchrow(
        """
        SELECT
          (SELECT uri FROM user_blocks WHERE blocker_did = %(viewer)s AND subject_did = %(actor)s
             AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 1) AS blocking,
          EXISTS (SELECT 1 FROM user_blocks WHERE blocker_did = %(actor)s
             AND subject_did = %(viewer)s AND deleted_at IS NULL) AS blocked_by
        """,
        {"viewer": viewer, "actor": actor},
    )
    assert row is not None
    return row


BLOCKED_USERS_SQL = """
SELECT uri, subject_did, record_cid, created_at FROM user_blocks
WHERE blocker_did = %(viewer)s AND deleted_at IS NULL
ORDER BY created_at DESC, uri DESC
LIMIT %(limit)s OFFSET %(offset)s
"""


async def blocked_users(db: Database, viewer: str, limit: int, offset: int) -> list[Row]:
    """The viewer's live user blocks, newest first (user_blocks_newest)."""
    return await db.fetch(BLOCKED_USERS_SQL, {"viewer": viewer, "limit": limit, "offset": offset})


def comments_sql(*, after: bool, community: bool) -> str:
    """An actor's live comments, newest first, on comments_commenter; with
    ``community``, only those under a post of that community."""
    keyset = "AND (c.ranked_at, c.uri) < (%(at)s, %(uri)s)" if after else ""
    scoped = (
        "AND EXISTS (SELECT 1 FROM posts p WHERE p.uri = c.root_uri"
        " AND p.community_did = %(community)s)"
        if community
        else ""
    )
    return f"""
    SELECT c.uri, c.ranked_at FROM comments c
    WHERE c.commenter_did = %(actor)s AND c.deleted_at IS NULL {keyset} {scoped}
    ORDER BY c.ranked_at DESC, c.uri DESC
    LIMIT %(limit)s
    """


async def comment_page(
    db: Database,
    actor: str,
    limit: int,
    after: tuple[datetime, str] | None,
    community: str | None,
) -> list[Row]:
    return await db.fetch(
        comments_sql(after=after is not None, community=community is not None),
        {
            "actor": actor,
            "limit": limit,
            "at": after[0] if after else None,
            "uri": after[1] if after else None,
            "community": community,
        },
    )
