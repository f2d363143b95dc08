"""SQL for OAuth sign-ins in progress and users' OAuth sessions."""

from __future__ import annotations

from datetime import datetime

import psycopg

from coves.db import Database, Row

_REQUEST_COLUMNS = (
    "state, issuer, did, handle, pds_url, kind, redirect_target, client_state, "
    "browser_binding, client_kid, secrets_sealed, expires_at"
)
_SESSION_COLUMNS = (
    "session_id, did, handle, pds_url, issuer, scope, client_kid, secrets_sealed, "
    "access_expires_at, created_at, refreshed_at, expires_at"
)


async def insert_request(
    db: Database,
    *,
    state: str,
    issuer: str,
    did: str,
    handle: str,
    pds_url: str,
    kind: str,
    redirect_target: str,
    client_state: str | None,
    browser_binding: bytes | None,
    client_kid: str | None,
    secrets: bytes,
    expires_at: datetime,
    now: datetime,
) -> None:
    def work(conn: psycopg.Connection[Row]) -> None:
        # Abandoned sign-ins are swept a few at a time by the ones that follow.
        conn.execute(
            "DELETE FROM oauth_requests WHERE ctid IN "
            "(SELECT ctid FROM oauth_requests WHERE expires_at <= %s LIMIT 100)",
            (now,),
        )
        conn.execute(
            f"INSERT INTO oauth_requests ({_REQUEST_COLUMNS}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                state,
                issuer,
                did,
                handle,
                pds_url,
                kind,
                redirect_target,
                client_state,
                browser_binding,
                client_kid,
                secrets,
                expires_at,
            ),
        )

    await db.run(work)


async def take_request(db: Database, state: str) -> Row | None:
    """Remove and return a sign-in in progress: a state is good for one callback."""
    return await db.fetchrow(
        f"DELETE FROM oauth_requests WHERE state = %s RETURNING {_REQUEST_COLUMNS}", (state,)
    )


async def insert_session(
    db: Database,
    *,
    session_id: str,
    did: str,
    handle: str,
    pds_url: str,
    issuer: str,
    scope: str,
    client_kid: str | None,
    secrets: bytes,
    access_expires_at: datetime,
    expires_at: datetime,
    now: datetime,
) -> None:
    await db.execute(
        f"INSERT INTO oauth_sessions ({_SESSION_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            session_id,
            did,
            handle,
            pds_url,
            issuer,
            scope,
            client_kid,
            secrets,
            access_expires_at,
            now,
            now,
            expires_at,
        ),
    )


async def get_session(db: Database, session_id: str) -> Row | None:
    return await db.fetchrow(
        f"SELECT {_SESSION_COLUMNS} FROM oauth_sessions WHERE session_id = %s", (session_id,)
    )


async def store_refresh(
    db: Database,
    session_id: str,
    *,
    secrets: bytes,
    access_expires_at: datetime,
    expires_at: datetime,
    now: datetime,
) -> int:
    return await db.execute(
        "UPDATE oauth_sessions SET secrets_sealed = %s, access_expires_at = %s, expires_at = %s, "
        "refreshed_at = %s WHERE session_id = %s",
        (secrets, access_expires_at, expires_at, now, session_id),
    )


async def delete_session(db: Database, session_id: str) -> int:
    return await db.execute("DELETE FROM oauth_sessions WHERE session_id = %s", (session_id,))


async def delete_expired_sessions(db: Database, now: datetime, limit: int = 100) -> int:
    return await db.execute(
        "DELETE FROM oauth_sessions WHERE ctid IN "
        "(SELECT ctid FROM oauth_sessions WHERE expires_at <= %s LIMIT %s)",
        (now, limit),
    )


async def session_owner(db: Database, session_id: str) -> Row | None:
    """What authenticating a request needs: whose session it is, and until when."""
    return await db.fetchrow(
        "SELECT did, handle, expires_at FROM oauth_sessions WHERE session_id = %s",
        (session_id,),
    )


async def ensure_user(db: Database, did: str) -> None:
    """A users row for an account that just signed in (the indexer may not know it yet)."""
    await db.execute("INSERT INTO users (did) VALUES (%s) ON CONFLICT (did) DO NOTHING", (did,))
