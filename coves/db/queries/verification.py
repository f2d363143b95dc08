"""SQL for the did:web hostedBy verifier."""

from __future__ import annotations

from datetime import datetime

from coves.db import Database


async def unverified_communities(
    db: Database,
    instance_did: str,
    limit: int,
    after: tuple[datetime, str] | None = None,
) -> list[tuple[str, str, datetime]]:
    """Foreign communities still waiting for verification, in keyset pages (indexed_at, did)."""
    if after is None:
        rows = await db.fetch(
            """
            SELECT did, hosted_by, indexed_at FROM communities
            WHERE verification = 'unverified' AND deleted_at IS NULL AND hosted_by <> %s
            ORDER BY indexed_at, did LIMIT %s
            """,
            (instance_did, limit),
        )
    else:
        rows = await db.fetch(
            """
            SELECT did, hosted_by, indexed_at FROM communities
            WHERE verification = 'unverified' AND deleted_at IS NULL AND hosted_by <> %s
              AND (indexed_at, did) > (%s, %s)
            ORDER BY indexed_at, did LIMIT %s
            """,
            (instance_did, after[0], after[1], limit),
        )
    return [(row["did"], row["hosted_by"], row["indexed_at"]) for row in rows]


async def set_verification(
    db: Database,
    did: str,
    hosted_by: str,
    outcome: str,
    *,
    reason: str | None,
    at: datetime,
) -> bool:
    """Record a verdict, only if the community still claims the same host (it may have moved)."""
    count = await db.execute(
        """
        UPDATE communities
        SET verification = %s, verification_reason = %s,
            verified_at = CASE WHEN %s = 'verified' THEN %s ELSE NULL END, updated_at = now()
        WHERE did = %s AND hosted_by = %s AND deleted_at IS NULL
        """,
        (outcome, reason, outcome, at, did, hosted_by),
    )
    return count > 0
