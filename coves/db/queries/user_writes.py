"""SQL the writes through Coves need: the caller's existing records, and subjects."""

from __future__ import annotations

from coves.db import Database, Row


async def live_votes(db: Database, voter: str, subject_uri: str) -> list[Row]:
    """The voter's live votes on a subject, the effective one first."""
    return await db.fetch(
        "SELECT uri, rkey, cid, direction, effective FROM votes "
        "WHERE voter_did = %s AND subject_uri = %s AND deleted_at IS NULL "
        "ORDER BY effective DESC, rev DESC, uri DESC",
        (voter, subject_uri),
    )


async def vote_subject(db: Database, uri: str) -> Row | None:
    """A live post or comment that can be voted on: its CID and its thread's post."""
    return await db.fetchrow(
        "SELECT cid, uri AS post_uri FROM posts WHERE uri = %(uri)s AND deleted_at IS NULL "
        "UNION ALL "
        "SELECT cid, root_uri AS post_uri FROM comments "
        "WHERE uri = %(uri)s AND deleted_at IS NULL "
        "LIMIT 1",
        {"uri": uri},
    )


async def live_post(db: Database, uri: str) -> Row | None:
    return await db.fetchrow(
        "SELECT uri, cid, community_did FROM posts WHERE uri = %s AND deleted_at IS NULL",
        (uri,),
    )


async def comment(db: Database, uri: str) -> Row | None:
    return await db.fetchrow(
        "SELECT uri, cid, commenter_did, root_uri, root_cid, parent_uri, parent_cid, record, "
        "deleted_at FROM comments WHERE uri = %s",
        (uri,),
    )


async def live_subscriptions(db: Database, user: str, community: str) -> list[Row]:
    return await db.fetch(
        "SELECT uri, rkey, record_cid FROM subscriptions "
        "WHERE user_did = %s AND community_did = %s AND deleted_at IS NULL "
        "ORDER BY created_at, uri",
        (user, community),
    )


async def live_community_blocks(db: Database, user: str, community: str) -> list[Row]:
    return await db.fetch(
        "SELECT uri, rkey, record_cid FROM blocks "
        "WHERE user_did = %s AND community_did = %s AND deleted_at IS NULL "
        "ORDER BY created_at, uri",
        (user, community),
    )
