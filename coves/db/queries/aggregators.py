"""SQL for aggregators: registrations, API keys, and the indexed service and
authorization records (written by the indexer, read here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from coves.db import Database, Row

# -- registrations -----------------------------------------------------------------


async def registration(db: Database, did: str) -> Row | None:
    return await db.fetchrow(
        "SELECT did, domain, handle, pds_url, registered_at FROM aggregator_registrations"
        " WHERE did = %s",
        (did,),
    )


async def register(
    db: Database, did: str, *, domain: str, handle: str | None, pds_url: str | None, at: datetime
) -> bool:
    """Record a registration; False when the DID was registered already."""

    def work(conn: psycopg.Connection[Row]) -> bool:
        cur = conn.execute(
            """
            INSERT INTO aggregator_registrations (did, domain, handle, pds_url, registered_at)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT (did) DO NOTHING
            """,
            (did, domain, handle, pds_url, at),
        )
        if cur.rowcount == 0:
            return False
        # The account is known from now on (posts by it may arrive before any event).
        conn.execute("INSERT INTO users (did) VALUES (%s) ON CONFLICT (did) DO NOTHING", (did,))
        return True

    return await db.run(work)


# -- API keys ----------------------------------------------------------------------


async def replace_api_key(
    db: Database, did: str, key_hash: bytes, prefix: str, at: datetime
) -> None:
    """Revoke the aggregator's live key, if any, and store the new one (one transaction)."""

    def work(conn: psycopg.Connection[Row]) -> None:
        conn.execute(
            "UPDATE aggregator_api_keys SET revoked_at = %s"
            " WHERE aggregator_did = %s AND revoked_at IS NULL",
            (at, did),
        )
        conn.execute(
            """
            INSERT INTO aggregator_api_keys (aggregator_did, key_hash, key_prefix, created_at)
            VALUES (%s, %s, %s, %s)
            """,
            (did, key_hash, prefix, at),
        )

    await db.run(work)


async def live_api_key(db: Database, did: str) -> Row | None:
    return await db.fetchrow(
        "SELECT key_prefix, created_at, last_used_at FROM aggregator_api_keys"
        " WHERE aggregator_did = %s AND revoked_at IS NULL",
        (did,),
    )


async def revoke_api_key(db: Database, did: str, at: datetime) -> bool:
    return (
        await db.execute(
            "UPDATE aggregator_api_keys SET revoked_at = %s"
            " WHERE aggregator_did = %s AND revoked_at IS NULL",
            (at, did),
        )
        > 0
    )


async def api_key_owner(db: Database, key_hash: bytes) -> Row | None:
    return await db.fetchrow(
        "SELECT id, aggregator_did FROM aggregator_api_keys"
        " WHERE key_hash = %s AND revoked_at IS NULL",
        (key_hash,),
    )


async def touch_api_key(db: Database, key_id: int, at: datetime) -> None:
    await db.execute("UPDATE aggregator_api_keys SET last_used_at = %s WHERE id = %s", (at, key_id))


# -- indexed records -----------------------------------------------------------------

_SERVICE_COLUMNS = """
    a.did, a.display_name, a.description, a.avatar, a.config_schema, a.source_url,
    a.maintainer_did, a.created_at, a.communities_using, a.posts_created, u.pds_url
"""


async def services(db: Database, dids: Sequence[str]) -> list[Row]:
    return await db.fetch(
        f"""
        SELECT {_SERVICE_COLUMNS}
        FROM aggregators a LEFT JOIN users u ON u.did = a.did
        WHERE a.did = ANY(%s) AND a.deleted_at IS NULL
        """,
        (list(dids),),
    )


async def authorizations_page(
    db: Database,
    *,
    aggregator: str | None = None,
    community: str | None = None,
    enabled_only: bool,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[Row]:
    """Live authorizations of one aggregator or in one community, newest first
    (keyset ``after`` = (created_at, uri) of the last row of the previous page)."""
    assert (aggregator is None) != (community is None)
    column = "aggregator_did" if aggregator is not None else "community_did"
    return await db.fetch(
        f"""
        SELECT au.uri, au.community_did, au.aggregator_did, au.enabled, au.config,
               au.created_by, au.disabled_at, au.disabled_by, au.created_at,
               c.name AS community_name, u.handle AS community_handle
        FROM aggregator_authorizations au
        LEFT JOIN communities c ON c.did = au.community_did
        LEFT JOIN users u ON u.did = au.community_did
        WHERE au.{column} = %(key)s AND au.deleted_at IS NULL
          AND (NOT %(enabled)s OR au.enabled)
          AND (%(after_at)s::timestamptz IS NULL
               OR (au.created_at, au.uri) < (%(after_at)s, %(after_uri)s))
        ORDER BY au.created_at DESC, au.uri DESC
        LIMIT %(limit)s
        """,
        {
            "key": aggregator if aggregator is not None else community,
            "enabled": enabled_only,
            "after_at": after[0] if after else None,
            "after_uri": after[1] if after else None,
            "limit": limit,
        },
    )


async def authorization(db: Database, community: str, aggregator: str) -> Row | None:
    """The newest live authorization record of (community, aggregator)."""
    return await db.fetchrow(
        """
        SELECT uri, rkey, enabled, config, created_at, created_by, record_cid
        FROM aggregator_authorizations
        WHERE community_did = %s AND aggregator_did = %s AND deleted_at IS NULL
        ORDER BY created_at DESC, uri DESC
        LIMIT 1
        """,
        (community, aggregator),
    )
