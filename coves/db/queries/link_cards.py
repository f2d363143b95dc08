"""SQL for the link-card cache (see coves/unfurl/service.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from coves.db import Database, Row


async def get(db: Database, url: str, now: datetime) -> Row | None:
    return await db.fetchrow(
        "SELECT provider, card, error FROM link_cards WHERE url = %s AND expires_at > %s",
        (url, now),
    )


async def put(
    db: Database,
    url: str,
    *,
    provider: str,
    card: dict[str, Any] | None,
    error: str | None,
    now: datetime,
    expires_at: datetime,
    prune: int = 100,
) -> None:
    """Store one entry and drop up to ``prune`` expired ones (the table stays small
    without a sweeper of its own)."""
    await db.execute(
        """
        WITH pruned AS (
            DELETE FROM link_cards WHERE url IN (
                SELECT url FROM link_cards WHERE expires_at <= %s AND url <> %s LIMIT %s
            )
        )
        INSERT INTO link_cards (url, provider, card, error, fetched_at, expires_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (url) DO UPDATE SET
            provider = EXCLUDED.provider, card = EXCLUDED.card, error = EXCLUDED.error,
            fetched_at = EXCLUDED.fetched_at, expires_at = EXCLUDED.expires_at
        """,
        (
            now,
            url,
            prune,
            url,
            provider,
            Jsonb(card) if card is not None else None,
            error,
            now,
            expires_at,
        ),
    )
