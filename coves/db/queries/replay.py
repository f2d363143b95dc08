"""SQL for the shared record of used token ids (``auth_replay``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from coves.db import Database


async def record_first_use(db: Database, key: bytes, expires_at: datetime, now: datetime) -> bool:
    """Record ``key`` until ``expires_at``; True when no live record of it existed."""
    return key in await record_first_uses(db, {key: expires_at}, now)


async def record_first_uses(
    db: Database, expiries: Mapping[bytes, datetime], now: datetime
) -> set[bytes]:
    """Record each key until its expiry; the keys no live record existed for.

    One statement, so two processes racing on the same token cannot both win:
    the insert or the take-over of an expired row happens for one of them only.
    """
    rows = await db.fetch(
        """
        INSERT INTO auth_replay (key, expires_at)
        SELECT * FROM unnest(%s::bytea[], %s::timestamptz[])
        ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at
            WHERE auth_replay.expires_at <= %s
        RETURNING key
        """,
        (list(expiries), list(expiries.values()), now),
    )
    return {bytes(row["key"]) for row in rows}


async def prune_expired(db: Database, now: datetime, limit: int = 10_000) -> int:
    return await db.execute(
        """
        DELETE FROM auth_replay WHERE key IN (
            SELECT key FROM auth_replay WHERE expires_at <= %s LIMIT %s
        )
        """,
        (now, limit),
    )
