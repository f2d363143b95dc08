"""Leases that make one process at a time refresh a key (coves/single_refresh.py)."""

from __future__ import annotations

from datetime import datetime

from coves.db import Database


async def claim(
    db: Database, scope: str, key: str, *, holder: str, now: datetime, until: datetime
) -> bool:
    """Take the lease unless another holder's is still live (one statement, so two
    processes claiming at once cannot both win)."""
    row = await db.fetchrow(
        """
        INSERT INTO refresh_leases AS l (scope, key, holder, until)
        VALUES (%(scope)s, %(key)s, %(holder)s, %(until)s)
        ON CONFLICT (scope, key) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
        WHERE l.until <= %(now)s
        RETURNING holder
        """,
        {"scope": scope, "key": key, "holder": holder, "until": until, "now": now},
    )
    return row is not None


async def release(db: Database, scope: str, key: str, holder: str) -> None:
    """Give the lease back, if it is still ours (an expired one may have been taken)."""
    await db.execute(
        "DELETE FROM refresh_leases WHERE scope = %s AND key = %s AND holder = %s",
        (scope, key, holder),
    )
