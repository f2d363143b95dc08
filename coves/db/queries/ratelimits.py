"""Rate-limit windows shared by the processes of one deployment."""

from __future__ import annotations

from collections.abc import Sequence

from coves.db import Database


async def add_hits(
    db: Database,
    keys: Sequence[str],
    window_starts: Sequence[int],
    hits: Sequence[int],
    expires: Sequence[float],
) -> list[tuple[str, int, int]]:
    """Add this process's hits to the shared windows; return each window's total."""
    rows = await db.fetch(
        """
        INSERT INTO rate_limit_counts AS r (key, window_start, hits, expires_at)
        SELECT k, w, h, to_timestamp(e)
        FROM unnest(%s::text[], %s::bigint[], %s::int[], %s::float8[]) AS x(k, w, h, e)
        ON CONFLICT (key, window_start) DO UPDATE SET hits = r.hits + EXCLUDED.hits
        RETURNING key, window_start, hits
        """,
        (list(keys), list(window_starts), list(hits), list(expires)),
    )
    return [(row["key"], row["window_start"], row["hits"]) for row in rows]


async def sweep(db: Database) -> int:
    return await db.execute(
        "DELETE FROM rate_limit_counts WHERE (key, window_start) IN ("
        " SELECT key, window_start FROM rate_limit_counts WHERE expires_at < now() LIMIT 10000)"
    )
