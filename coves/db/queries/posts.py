"""Post hydration for the read API: everything a postView and the read rules need."""

from __future__ import annotations

from coves.db import Database, Row

_HYDRATE = """
SELECT p.uri, p.cid, p.rkey, p.community_did, p.author_did, p.title, p.content,
       p.facets, p.embed, p.labels, p.record, p.created_at, p.indexed_at, p.edited_at,
       p.deleted_at, p.withheld, p.upvote_count, p.downvote_count, p.score, p.comment_count,
       au.handle AS author_handle, au.display_name AS author_display_name,
       au.avatar AS author_avatar, au.pds_url AS author_pds_url,
       coalesce(au.active, true) AS author_active, au.account_status AS author_status,
       c.did IS NOT NULL AS community_known, c.created_by AS community_created_by,
       c.name AS community_name, c.display_name AS community_display_name,
       c.avatar AS community_avatar, c.hosted_by AS community_hosted_by,
       c.visibility AS community_visibility, c.verification AS community_verification,
       c.deleted_at AS community_deleted_at,
       cu.handle AS community_handle, cu.pds_url AS community_pds_url,
       cu.did IS NOT NULL AS community_account_known,
       coalesce(cu.active, true) AS community_active, cu.account_status AS community_status
FROM posts p
LEFT JOIN users au ON au.did = p.author_did
LEFT JOIN communities c ON c.did = p.community_did
LEFT JOIN users cu ON cu.did = p.community_did
WHERE p.uri = ANY(%s)
"""


async def hydrate(db: Database, uris: list[str]) -> list[Row]:
    """Everything a postView needs for ``uris``, in one statement (any order)."""
    if not uris:
        return []
    return await db.fetch(_HYDRATE, (uris,))


async def state_of(db: Database, uris: list[str]) -> list[Row]:
    """Tombstone information for URIs that hydrate found no live row for."""
    return await db.fetch(
        "SELECT did, collection, rkey, deleted, updated_at FROM record_state"
        " WHERE (did, collection, rkey) IN (SELECT split_part(u, '/', 3), split_part(u, '/', 4),"
        " split_part(u, '/', 5) FROM unnest(%s::text[]) u) AND deleted",
        (uris,),
    )
