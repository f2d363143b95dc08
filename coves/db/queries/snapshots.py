"""Listing snapshots (coves/read/snapshots.py)."""

from __future__ import annotations

from typing import Any

from coves.db import Database


async def insert(db: Database, snapshot_id: str, key: str, items: list[str], ttl: float) -> None:
    def work(conn: Any) -> None:
        conn.execute(
            """
            INSERT INTO listing_snapshots (id, key, items, taken_at, expires_at)
            VALUES (%s, %s, %s, extract(epoch FROM now()), now() + make_interval(secs => %s))
            """,
            (snapshot_id, key, items, ttl),
        )
        # Housekeeping rides along with writes: a bounded sweep of expired rows.
        conn.execute(
            """
            DELETE FROM listing_snapshots WHERE id IN (
                SELECT id FROM listing_snapshots WHERE expires_at < now() LIMIT 100
            )
            """
        )

    await db.run(work)


async def get(db: Database, snapshot_id: str) -> dict[str, Any] | None:
    return await db.fetchrow(
        "SELECT key, items, taken_at FROM listing_snapshots WHERE id = %s AND expires_at > now()",
        (snapshot_id,),
    )
