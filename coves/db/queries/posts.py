"""Post hydration for the read API: everything a postView and the read rules need."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from coves.db import Database, Row
from coves.db.queries.relations import RELATIONS_SQL, relation_params

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


RelationsOf = Callable[[list[Row]], tuple[Sequence[str], Sequence[str], Sequence[str]]]


async def hydrate_with_relations(
    db: Database, uris: list[str], viewer: str, relations_of: RelationsOf
) -> tuple[list[Row], Row]:
    """:func:`hydrate` for ``uris`` and then, on the same connection in the same thread
    hop, :func:`coves.db.queries.relations.relations` for ``viewer`` with the
    communities, actors and subjects ``relations_of(rows)`` names. A signed-in page
    costs one hop instead of two."""

    def hydrate_and_relate(conn: psycopg.Connection[Row]) -> tuple[list[Row], Row]:
        rows = conn.execute(_HYDRATE, (uris,), prepare=True).fetchall() if uris else []
        communities, actors, subjects = relations_of(rows)
        params: dict[str, Any] = relation_params(viewer, communities, actors, subjects)
        row = conn.execute(RELATIONS_SQL, params, prepare=True).fetchone()
        assert row is not None
        return rows, row

    return await db.run(hydrate_and_relate, transaction=False)


async def state_of(db: Database, uris: list[str]) -> list[Row]:
    """Tombstone information for URIs that hydrate found no live row for."""
    return await db.fetch(
        "SELECT did, collection, rkey, deleted, updated_at FROM record_state"
        " WHERE (did, collection, rkey) IN (SELECT split_part(u, '/', 3), split_part(u, '/', 4),"
        " split_part(u, '/', 5) FROM unnest(%s::text[]) u) AND deleted",
        (uris,),
    )
