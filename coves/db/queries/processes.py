"""Process heartbeats (nurseries/heartbeat.py) and the deployment view _health gives."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from coves.db import Database, Row

# A process that has not beaten for this long is reported as gone.
STALE_AFTER_SECONDS = 15.0


async def beat(
    db: Database,
    *,
    ident: str,
    name: str,
    role: str,
    host: str,
    pid: int,
    healthy: bool,
    started_at: float,
    details: dict[str, Any],
) -> None:
    await db.execute(
        """
        INSERT INTO process_heartbeats AS h
            (id, name, role, host, pid, healthy, started_at, seen_at, details)
        VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s), now(), %s)
        ON CONFLICT (id) DO UPDATE SET
            name = EXCLUDED.name, role = EXCLUDED.role, healthy = EXCLUDED.healthy,
            seen_at = EXCLUDED.seen_at, details = EXCLUDED.details
        """,
        (ident, name, role, host, pid, healthy, started_at, Jsonb(details)),
    )


async def forget(db: Database, ident: str) -> None:
    await db.execute("DELETE FROM process_heartbeats WHERE id = %s", (ident,))


async def deployment(db: Database, *, timeout: float = 2.0) -> list[Row] | None:
    """Every process seen in the last hour, on the side connection (None: unreachable).

    This is also _health's database check, so it never waits behind the pool.
    """
    return await db.side_fetch(
        """
        SELECT name, role, host, pid, healthy, details,
               extract(epoch FROM now() - seen_at)::float8 AS age_seconds,
               extract(epoch FROM now() - started_at)::float8 AS uptime_seconds
        FROM process_heartbeats
        WHERE seen_at > now() - interval '1 hour'
        ORDER BY role, name, host, pid
        """,
        timeout=timeout,
    )


async def sweep(db: Database) -> int:
    """Forget processes gone for an hour (crashed without saying goodbye)."""
    return await db.execute(
        "DELETE FROM process_heartbeats WHERE seen_at < now() - interval '1 hour'"
    )


async def on_host(db: Database, host: str) -> list[tuple[str, int]]:
    """(id, pid) of every process that beat from ``host``."""
    rows = await db.fetch("SELECT id, pid FROM process_heartbeats WHERE host = %s", (host,))
    return [(row["id"], row["pid"]) for row in rows]


async def forget_many(db: Database, idents: list[str]) -> int:
    if not idents:
        return 0
    return await db.execute("DELETE FROM process_heartbeats WHERE id = ANY(%s)", (idents,))
