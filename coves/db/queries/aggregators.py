"""SQL for aggregators: registrations, API keys, and the indexed service and
authorization records (written by the indexer, read here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from coves.db import Database, Row
from coves.db.queries import visibility

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
    a.maintainer_did, a.created_at, a.communities_using, a.posts_created, u.pds_url,
    coalesce(u.active, true) AS active, u.account_status
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


# What the views and the read rules need of an authorization: its community's
# facts (named as in post hydration, coves.read.facts.community_of_post) and the
# aggregator's account.
_AUTHORIZATION_COLUMNS = """
    a.uri, a.community_did, a.aggregator_did, a.enabled, a.config, a.created_by,
    a.disabled_at, a.disabled_by, a.created_at,
    c.did IS NOT NULL AS community_known, c.name AS community_name,
    c.created_by AS community_created_by, c.visibility AS community_visibility,
    c.verification AS community_verification, c.deleted_at AS community_deleted_at,
    cu.handle AS community_handle, cu.did IS NOT NULL AS community_account_known,
    coalesce(cu.active, true) AS community_active, cu.account_status AS community_status,
    coalesce(ag.active, true) AS aggregator_active,
    ag.account_status AS aggregator_account_status
"""


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
    (keyset ``after`` = (created_at, uri) of the last row of the previous page),
    pre-filtered with the SQL forms of the viewer-independent read rules: an
    aggregator's list names only communities that exist and are not unlisted; a
    community's list only aggregators whose account is active. The read rules
    decide each row again."""
    if aggregator is not None:
        column, key = "aggregator_did", aggregator
        rules = f"{visibility.COMMUNITY_EXISTS} AND {visibility.NOT_UNLISTED}"
    else:
        assert community is not None
        column, key = "community_did", community
        rules = visibility.LIVE_AGGREGATOR
    return await db.fetch(
        f"""
        SELECT {_AUTHORIZATION_COLUMNS}
        FROM aggregator_authorizations a
        LEFT JOIN communities c ON c.did = a.community_did
        LEFT JOIN users cu ON cu.did = a.community_did
        LEFT JOIN users ag ON ag.did = a.aggregator_did
        WHERE a.{column} = %(key)s AND a.deleted_at IS NULL AND {rules}
          AND (NOT %(enabled)s OR a.enabled)
          AND (%(after_at)s::timestamptz IS NULL
               OR (a.created_at, a.uri) < (%(after_at)s, %(after_uri)s))
        ORDER BY a.created_at DESC, a.uri DESC
        LIMIT %(limit)s
        """,
        {
            "key": key,
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
