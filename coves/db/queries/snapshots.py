"""Listing snapshots (coves/read/snapshots.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import Connection

from coves.db import Database, Row

_INSERT = """
INSERT INTO listing_snapshots (id, key, items, taken_at, expires_at)
VALUES (%s, %s, %s, extract(epoch FROM now()), now() + make_interval(secs => %s))
"""


async def insert(
    db: Database, snapshot_id: str, key: str, items: Sequence[str], ttl: float
) -> None:
    # One statement, autocommit, on an UNLOGGED table: no transaction, no WAL
    # flush. The URIs travel as one text value (cheap to encode, unlike text[]).
    await db.execute(_INSERT, (snapshot_id, key, "\n".join(items), ttl))


def insert_on(
    conn: Connection[Row], snapshot_id: str, key: str, items: Sequence[str], ttl: float
) -> None:
    """:func:`insert` on a connection the caller holds (autocommit), in its thread hop."""
    conn.execute(_INSERT, (snapshot_id, key, "\n".join(items), ttl), prepare=True)


async def get(db: Database, snapshot_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        "SELECT key, items, taken_at FROM listing_snapshots WHERE id = %s AND expires_at > now()",
        (snapshot_id,),
    )
    if row is None:
        return None
    text = row["items"]
    return {**row, "items": text.split("\n") if text else []}


async def sweep(db: Database, *, max_rows: int, batch: int = 5000) -> int:
    """Delete expired snapshots, then the oldest beyond ``max_rows``; return how many."""

    def work(conn: Any) -> int:
        removed = conn.execute(
            """
            DELETE FROM listing_snapshots WHERE id IN (
                SELECT id FROM listing_snapshots WHERE expires_at < now() LIMIT %s)
            """,
            (batch,),
        ).rowcount
        removed += conn.execute(
            """
            DELETE FROM listing_snapshots WHERE id IN (
                SELECT id FROM listing_snapshots
                WHERE expires_at <= (SELECT expires_at FROM listing_snapshots
                                     ORDER BY expires_at DESC OFFSET %s LIMIT 1)
                LIMIT %s)
            """,
            (max_rows, batch),
        ).rowcount
        return int(removed)

    return await db.run(work, transaction=False)
