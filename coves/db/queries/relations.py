"""The viewer's relations one page of a read needs (``coves.read.relations``).

One statement: the communities the viewer blocks (all of them; a handful),
their subscriptions among the page's private communities, the user blocks
between the viewer and the page's authors in both directions, and the
viewer's effective votes on the page's posts and comments. Each part is a
probe of a partial index on the viewer's DID.
"""

from __future__ import annotations

from collections.abc import Sequence

from coves.db import Database, Row

RELATIONS_SQL = """
SELECT
  (SELECT coalesce(array_agg(b.community_did), '{}')
     FROM blocks b WHERE b.user_did = %(viewer)s AND b.deleted_at IS NULL) AS blocked_communities,
  (SELECT coalesce(array_agg(s.community_did), '{}')
     FROM subscriptions s
     WHERE s.user_did = %(viewer)s AND s.community_did = ANY(%(communities)s::text[])
       AND s.deleted_at IS NULL) AS member_of,
  (SELECT coalesce(array_agg(u.subject_did), '{}')
     FROM user_blocks u
     WHERE u.blocker_did = %(viewer)s AND u.subject_did = ANY(%(actors)s::text[])
       AND u.deleted_at IS NULL) AS blocking,
  (SELECT coalesce(array_agg(u.blocker_did), '{}')
     FROM user_blocks u
     WHERE u.subject_did = %(viewer)s AND u.blocker_did = ANY(%(actors)s::text[])
       AND u.deleted_at IS NULL) AS blocked_by,
  (SELECT coalesce(jsonb_agg(jsonb_build_array(v.subject_uri, v.direction, v.uri)), '[]')
     FROM unnest(%(subjects)s::text[]) AS k(uri)
     CROSS JOIN LATERAL (
         -- one probe of votes_one_effective (voter, subject) per URI: matched on
         -- the voter alone, the planner would read every vote a heavy voter cast
         SELECT subject_uri, direction, uri FROM votes
         WHERE voter_did = %(viewer)s AND subject_uri = k.uri AND effective
           AND deleted_at IS NULL
         LIMIT 1) v) AS votes
"""


async def relations(
    db: Database,
    viewer: str,
    *,
    communities: Sequence[str],
    actors: Sequence[str],
    subjects: Sequence[str],
) -> Row:
    """``blocked_communities``, ``member_of``, ``blocking``, ``blocked_by`` (DID lists)
    and ``votes`` (``[subject, direction, vote uri]`` triples)."""
    row = await db.fetchrow(RELATIONS_SQL, relation_params(viewer, communities, actors, subjects))
    assert row is not None
    return row


def relation_params(
    viewer: str, communities: Sequence[str], actors: Sequence[str], subjects: Sequence[str]
) -> dict[str, object]:
    return {
        "viewer": viewer,
        "communities": list(communities),
        "actors": list(actors),
        "subjects": list(subjects),
    }
