"""SQL for the identity cache and for filling in users' handles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from coves.db import Database, Row


async def get_cached(db: Database, kind: str, key: str, now: datetime) -> Row | None:
    return await db.fetchrow(
        "SELECT value, error FROM identity_cache WHERE kind = %s AND key = %s AND expires_at > %s",
        (kind, key, now),
    )


async def put_cached(
    db: Database,
    kind: str,
    key: str,
    *,
    did: str | None,
    value: Any,
    error: str | None,
    expires_at: datetime,
) -> None:
    await db.execute(
        """
        INSERT INTO identity_cache (kind, key, did, value, error, expires_at, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (kind, key) DO UPDATE SET
            did = EXCLUDED.did, value = EXCLUDED.value, error = EXCLUDED.error,
            expires_at = EXCLUDED.expires_at, updated_at = now()
        """,
        (kind, key, did, Jsonb(value) if value is not None else None, error, expires_at),
    )


async def purge(db: Database, identifiers: Sequence[str]) -> int:
    """Drop every entry keyed by, or about, any of ``identifiers`` (DIDs or handles)."""
    return await db.execute(
        "DELETE FROM identity_cache WHERE key = ANY(%s) OR did = ANY(%s)",
        (list(identifiers), list(identifiers)),
    )


async def delete_expired(db: Database, now: datetime, limit: int = 1000) -> int:
    return await db.execute(
        """
        DELETE FROM identity_cache WHERE ctid IN (
            SELECT ctid FROM identity_cache WHERE expires_at <= %s LIMIT %s
        )
        """,
        (now, limit),
    )


async def users_due_for_handle(db: Database, now: datetime, limit: int) -> list[Row]:
    """Accounts whose handle is due for (re-)verification: new, changed, or a failed
    attempt whose backoff has passed. Rows: did, handle_attempts."""
    return await db.fetch(
        """
        SELECT did, handle_attempts FROM users
        WHERE handle_retry_at <= %s
        ORDER BY handle_retry_at
        LIMIT %s
        """,
        (now, limit),
    )


async def set_user_identity(
    db: Database,
    did: str,
    handle: str | None,
    pds_url: str | None,
    checked_at: datetime,
    *,
    retry_at: datetime | None = None,
) -> list[str]:
    """Record a verification: ``handle`` (verified both ways) or None (not verified;
    retry at ``retry_at``). A verified handle is taken from the account that held it,
    which becomes due for re-verification itself. Returns the DIDs whose shown handle
    changed (views of them are stale)."""

    def apply(conn: psycopg.Connection[Row]) -> list[str]:
        changed: list[str] = []
        if handle is not None:
            lost = conn.execute(
                "UPDATE users SET handle = NULL, handle_retry_at = %s, handle_attempts = 0,"
                " updated_at = now() WHERE handle = %s AND did <> %s RETURNING did",
                (checked_at, handle, did),
            ).fetchall()
            changed.extend(row["did"] for row in lost)
        row = conn.execute(
            """
            UPDATE users u SET handle = %s, pds_url = COALESCE(%s, u.pds_url),
                   handle_checked_at = %s, handle_retry_at = %s,
                   handle_attempts = CASE WHEN %s::timestamptz IS NULL THEN 0
                                          ELSE u.handle_attempts + 1 END,
                   updated_at = now()
            FROM (SELECT did, handle FROM users WHERE did = %s) AS before
            WHERE u.did = before.did
            RETURNING before.handle IS DISTINCT FROM u.handle AS moved
            """,
            (handle, pds_url, checked_at, retry_at, retry_at, did),
        ).fetchone()
        if row is not None and row["moved"]:
            changed.append(did)
        return changed

    return await db.run(apply)


async def postpone_handle_check(
    db: Database, did: str, checked_at: datetime, retry_at: datetime
) -> None:
    """The identity did not resolve (network trouble?): keep the last verified handle."""
    await db.execute(
        """
        UPDATE users SET handle_checked_at = %s, handle_retry_at = %s,
               handle_attempts = handle_attempts + 1
        WHERE did = %s
        """,
        (checked_at, retry_at, did),
    )


_PROFILE_COLUMNS = """
    did, handle, display_name, description, avatar, banner, pds_url, active,
    account_status, created_at, profile_created_at, updated_at
"""


async def user_by_did(db: Database, did: str) -> Row | None:
    return await db.fetchrow(f"SELECT {_PROFILE_COLUMNS} FROM users WHERE did = %s", (did,))


async def user_by_handle(db: Database, handle: str) -> Row | None:
    return await db.fetchrow(f"SELECT {_PROFILE_COLUMNS} FROM users WHERE handle = %s", (handle,))
