"""SQL for the shared record of used token ids (``auth_replay``)."""

from __future__ import annotations

from datetime import datetime

from coves.db import Database


async def record_first_use(db: Database, key: bytes, expires_at: datetime, now: datetime) -> bool:
    """Record ``key`` until ``expires_at``; True when no live record of it existed.

    One statement, so two processes racing on the same token cannot both win:
    the insert or the take-over of an expired row happens for one of them only.
    """
    row = await db.fetchrow(
        """
        INSERT INTO auth_replay (key, expires_at) VALUES (%s, %s)
        ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
            WHERE auth_replay.expires_at <= %s
        RETURNING 1 AS fresh
        """,
        (key, expires_at, now),
    )
    return row is not None


async def prune_expired(db: Database, now: datetime, limit: int = 10_000) -> int:
    return await db.execute(
        """
        DELETE FROM auth_replay WHERE key IN (
            SELECT key FROM auth_replay WHERE expires_at <= %s LIMIT %s
        )
        """,
        (now, limit),
    )
