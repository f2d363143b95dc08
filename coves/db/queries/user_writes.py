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


async def comment(db: Database, uri: str) -> Row | None:
    return await db.fetchrow(
        "SELECT uri, cid, commenter_did, root_uri, root_cid, parent_uri, parent_cid, record, "
        "deleted_at FROM comments WHERE uri = %s",
        (uri,),
    )


# The caller's live records of one kind about one subject: (table, owner column,
# subject column). Constants only: never built from input.
_RELATIONS = {
    "subscription": ("subscriptions", "user_did", "community_did"),
    "community_block": ("blocks", "user_did", "community_did"),
    "user_block": ("user_blocks", "blocker_did", "subject_did"),
}


async def live_relations(db: Database, kind: str, owner: str, subject: str) -> list[Row]:
    """The owner's live subscription or block records about ``subject``, oldest first."""
    table, owner_column, subject_column = _RELATIONS[kind]
    return await db.fetch(
        f"SELECT uri, rkey, record_cid FROM {table} "
        f"WHERE {owner_column} = %s AND {subject_column} = %s AND deleted_at IS NULL "
        "ORDER BY created_at, uri",
        (owner, subject),
    )
