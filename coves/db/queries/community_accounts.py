"""The hosting side of communities: provisioning state and sealed credentials.

Values in ``*_sealed`` columns are ciphertexts (``coves.hosting.credentials``
seals and opens them); nothing here sees a plaintext secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import psycopg

from coves.db import Database, Row

COLUMNS = """
name, handle, email, pds_url, created_by, did, state, profile, password_sealed,
access_sealed, refresh_sealed, access_expires_at, refresh_expires_at, refreshed_at,
refresh_failures, locked_out, create_attempts, last_error, lease_until, created_at,
updated_at, deleted_at
"""

UNFINISHED = ("reserved", "account_created")


async def reserve(
    db: Database,
    *,
    name: str,
    handle: str,
    email: str,
    pds_url: str,
    created_by: str,
    profile: dict[str, Any],
    password_sealed: bytes,
    lease_seconds: float,
    instance_did: str,
    max_per_day: int,
) -> tuple[str, Row | None]:
    """Reserve ``name`` for a new community, atomically with the checks that guard it.

    Returns ``("reserved", row)`` (the caller holds the lease), ``("resume", row)``
    (the caller's own unfinished create, lease now held), ``("busy", row)`` (the
    caller's own create is running elsewhere), ``("taken", None)``,
    ``("exists", row)`` (the caller's finished community) or ``("rate_limited", None)``.
    """

    def work(conn: psycopg.Connection[Row]) -> tuple[str, Row | None]:
        # One creator's creates are serialised: the count and the insert agree.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7714))", (created_by,))
        existing = conn.execute(
            f"SELECT {COLUMNS} FROM community_accounts WHERE name = %s FOR UPDATE", (name,)
        ).fetchone()
        if existing is not None:
            if existing["created_by"] != created_by or existing["state"] == "deleted":
                return "taken", None
            if existing["state"] == "active":
                return "exists", existing
            leased = conn.execute(
                f"""
                UPDATE community_accounts
                SET lease_until = now() + make_interval(secs => %s), updated_at = now()
                WHERE name = %s AND (lease_until IS NULL OR lease_until < now())
                RETURNING {COLUMNS}
                """,
                (lease_seconds, name),
            ).fetchone()
            return ("resume", leased) if leased is not None else ("busy", existing)
        indexed = conn.execute(
            """
            SELECT 1 FROM communities
            WHERE lower(name) = %s AND hosted_by = %s AND deleted_at IS NULL
            LIMIT 1
            """,
            (name, instance_did),
        ).fetchone()
        if indexed is not None:
            return "taken", None
        recent = conn.execute(
            """
            SELECT count(*) AS n FROM community_accounts
            WHERE created_by = %s AND created_at > now() - interval '1 day'
            """,
            (created_by,),
        ).fetchone()
        if recent is not None and recent["n"] >= max_per_day:
            return "rate_limited", None
        row = conn.execute(
            f"""
            INSERT INTO community_accounts
                (name, handle, email, pds_url, created_by, state, profile, password_sealed,
                 lease_until)
            VALUES (%s, %s, %s, %s, %s, 'reserved', %s::jsonb, %s,
                    now() + make_interval(secs => %s))
            ON CONFLICT DO NOTHING
            RETURNING {COLUMNS}
            """,
            (
                name,
                handle,
                email,
                pds_url,
                created_by,
                orjson.dumps(profile).decode(),
                password_sealed,
                lease_seconds,
            ),
        ).fetchone()
        return ("reserved", row) if row is not None else ("taken", None)

    return await db.run(work)


async def lease_unfinished(db: Database, name: str, lease_seconds: float) -> Row | None:
    """Take the provisioning lease of an unfinished community (None if held or finished)."""
    return await db.fetchrow(
        f"""
        UPDATE community_accounts
        SET lease_until = now() + make_interval(secs => %s), updated_at = now()
        WHERE name = %s AND state IN ('reserved', 'account_created')
          AND (lease_until IS NULL OR lease_until < now())
        RETURNING {COLUMNS}
        """,
        (lease_seconds, name),
    )


async def unfinished_names(db: Database, idle_seconds: float, limit: int) -> list[str]:
    """Unfinished creates nobody is working on (lease expired) that were idle a while."""
    rows = await db.fetch(
        """
        SELECT name FROM community_accounts
        WHERE state IN ('reserved', 'account_created')
          AND (lease_until IS NULL OR lease_until < now())
          AND updated_at < now() - make_interval(secs => %s)
        ORDER BY updated_at
        LIMIT %s
        """,
        (idle_seconds, limit),
    )
    return [row["name"] for row in rows]


async def note_create_attempt(db: Database, name: str) -> None:
    """Durably count a createAccount call before it is sent (a lost answer may mean success)."""
    await db.execute(
        "UPDATE community_accounts SET create_attempts = create_attempts + 1,"
        " updated_at = now() WHERE name = %s",
        (name,),
    )


async def release(db: Database, name: str, error: str | None) -> None:
    """Give the lease back after a failure that a later attempt may get past."""
    await db.execute(
        "UPDATE community_accounts SET lease_until = NULL, last_error = %s, updated_at = now()"
        " WHERE name = %s",
        (error, name),
    )


async def abandon(db: Database, name: str) -> None:
    """Drop a reservation whose account was never created (the name is free again)."""
    await db.execute(
        "DELETE FROM community_accounts WHERE name = %s AND state = 'reserved'", (name,)
    )


async def account_created(
    db: Database,
    name: str,
    *,
    did: str,
    access_sealed: bytes,
    refresh_sealed: bytes,
    access_expires_at: datetime | None,
    refresh_expires_at: datetime | None,
) -> None:
    await db.execute(
        """
        UPDATE community_accounts
        SET did = %s, state = 'account_created', access_sealed = %s, refresh_sealed = %s,
            access_expires_at = %s, refresh_expires_at = %s, refreshed_at = now(),
            last_error = NULL, updated_at = now()
        WHERE name = %s
        """,
        (did, access_sealed, refresh_sealed, access_expires_at, refresh_expires_at, name),
    )


async def activate(db: Database, name: str) -> None:
    await db.execute(
        "UPDATE community_accounts SET state = 'active', lease_until = NULL, last_error = NULL,"
        " updated_at = now() WHERE name = %s",
        (name,),
    )


async def by_name(db: Database, name: str) -> Row | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM community_accounts WHERE name = %s", (name,))


async def by_did(db: Database, did: str) -> Row | None:
    return await db.fetchrow(f"SELECT {COLUMNS} FROM community_accounts WHERE did = %s", (did,))


async def store_session(
    db: Database,
    name: str,
    *,
    expected_refresh: bytes | None,
    access_sealed: bytes,
    refresh_sealed: bytes,
    access_expires_at: datetime | None,
    refresh_expires_at: datetime | None,
) -> bool:
    """Save a new session if the stored refresh token is still ``expected_refresh``.

    A compare-and-swap: when another process refreshed first, its session stays
    and ours is dropped (both are valid; one is enough).
    """
    row = await db.fetchrow(
        """
        UPDATE community_accounts
        SET access_sealed = %s, refresh_sealed = %s, access_expires_at = %s,
            refresh_expires_at = %s, refreshed_at = now(), refresh_failures = 0,
            locked_out = false, last_error = NULL, updated_at = now()
        WHERE name = %s AND refresh_sealed IS NOT DISTINCT FROM %s
        RETURNING name
        """,
        (
            access_sealed,
            refresh_sealed,
            access_expires_at,
            refresh_expires_at,
            name,
            expected_refresh,
        ),
    )
    return row is not None


async def note_refresh_failure(db: Database, name: str, error: str, *, locked_out: bool) -> None:
    await db.execute(
        """
        UPDATE community_accounts
        SET refresh_failures = refresh_failures + 1, locked_out = locked_out OR %s,
            last_error = %s, updated_at = now()
        WHERE name = %s
        """,
        (locked_out, error, name),
    )


async def expiring(db: Database, before: datetime, limit: int) -> list[Row]:
    """Active communities whose access token expires before ``before`` (soonest first)."""
    return await db.fetch(
        """
        SELECT name, did, access_expires_at, refresh_failures, locked_out
        FROM community_accounts
        WHERE state = 'active' AND (access_expires_at IS NULL OR access_expires_at < %s)
        ORDER BY access_expires_at NULLS FIRST
        LIMIT %s
        """,
        (before, limit),
    )


async def all_active_names(db: Database) -> list[str]:
    rows = await db.fetch(
        "SELECT name FROM community_accounts WHERE state = 'active' ORDER BY name"
    )
    return [row["name"] for row in rows]


async def summary(db: Database) -> Row | None:
    return await db.fetchrow(
        """
        SELECT count(*) FILTER (WHERE state = 'active') AS active,
               count(*) FILTER (WHERE state IN ('reserved', 'account_created')) AS unfinished,
               count(*) FILTER (WHERE locked_out) AS locked_out,
               min(access_expires_at) FILTER (WHERE state = 'active') AS next_expiry
        FROM community_accounts
        """
    )


async def mark_deleted(db: Database, name: str, profile: dict[str, Any]) -> None:
    """Soft delete: the row (credentials, last profile) stays for a restore."""
    await db.execute(
        """
        UPDATE community_accounts
        SET state = 'deleted', deleted_at = now(), profile = %s::jsonb, updated_at = now()
        WHERE name = %s
        """,
        (orjson.dumps(profile).decode(), name),
    )


async def mark_restored(db: Database, name: str) -> None:
    await db.execute(
        "UPDATE community_accounts SET state = 'active', deleted_at = NULL, updated_at = now()"
        " WHERE name = %s AND state = 'deleted'",
        (name,),
    )


async def set_identity(db: Database, did: str, handle: str, pds_url: str) -> None:
    """The community's handle and PDS, known first-hand (we created the account).

    The same effect as a verified resolution: the handle moves to this DID.
    """

    def work(conn: psycopg.Connection[Row]) -> None:
        conn.execute(
            "UPDATE users SET handle = NULL, updated_at = now() WHERE handle = %s AND did <> %s",
            (handle, did),
        )
        conn.execute(
            """
            INSERT INTO users (did, handle, pds_url, handle_checked_at)
            VALUES (%s, %s, %s, now())
            ON CONFLICT (did) DO UPDATE SET handle = EXCLUDED.handle,
                pds_url = EXCLUDED.pds_url, handle_checked_at = now(), updated_at = now()
            """,
            (did, handle, pds_url),
        )

    await db.run(work)
