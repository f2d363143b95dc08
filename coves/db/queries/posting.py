"""SQL for writing posts through Coves: what the checks read, and the
submission ledger behind the posting limits (coves/posting/limits.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from coves.db import Database, Row

HOUR = timedelta(hours=1)
KEEP = timedelta(days=1)


async def post(db: Database, uri: str) -> Row | None:
    """A stored post (live or not) with what edits and deletes check."""
    return await db.fetchrow(
        """
        SELECT p.uri, p.rkey, p.cid, p.community_did, p.author_did, p.record,
               p.deleted_at, p.withheld, c.created_by AS community_created_by
        FROM posts p LEFT JOIN communities c ON c.did = p.community_did
        WHERE p.uri = %s
        """,
        (uri,),
    )


@dataclass(frozen=True)
class Submission:
    """One post.create about to be written, and the limits it must stay within."""

    author: str
    community: str
    link: str | None  # normalised URL of its external embed
    aggregator: bool
    now: datetime
    per_hour: int
    aggregator_per_hour: int


def _reserve(conn: psycopg.Connection[Row], sub: Submission) -> tuple[str, int | None]:
    author, now = sub.author, sub.now
    # One poster's submissions are decided one at a time (transaction-scoped lock).
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('post:' || %s, 0))", (author,))
    conn.execute(
        "DELETE FROM post_submissions WHERE author_did = %s AND created_at < %s",
        (author, now - KEEP),
    )
    since = now - HOUR
    if sub.link is not None:
        duplicate = conn.execute(
            """
            SELECT 1 FROM post_submissions
            WHERE author_did = %s AND community_did = %s AND link = %s AND created_at > %s
            LIMIT 1
            """,
            (author, sub.community, sub.link, since),
        ).fetchone()
        if duplicate is not None:
            return "duplicate", None
    if sub.aggregator:
        row = conn.execute(
            "SELECT count(*) AS n FROM post_submissions"
            " WHERE author_did = %s AND community_did = %s AND created_at > %s",
            (author, sub.community, since),
        ).fetchone()
        if row is not None and row["n"] >= sub.aggregator_per_hour:
            return "aggregator_limit", None
    else:
        row = conn.execute(
            "SELECT count(*) AS n FROM post_submissions WHERE author_did = %s AND created_at > %s",
            (author, since),
        ).fetchone()
        if row is not None and row["n"] >= sub.per_hour:
            return "user_limit", None
    inserted = conn.execute(
        """
        INSERT INTO post_submissions (author_did, community_did, link, aggregator, created_at)
        VALUES (%s, %s, %s, %s, %s) RETURNING id
        """,
        (author, sub.community, sub.link, sub.aggregator, now),
    ).fetchone()
    assert inserted is not None
    return "ok", int(inserted["id"])


async def reserve(db: Database, sub: Submission) -> tuple[str, int | None]:
    """("ok", id) with a reservation made, or (why, None): duplicate, user_limit,
    aggregator_limit."""
    return await db.run(lambda conn: _reserve(conn, sub))


async def confirm(db: Database, reservation: int, uri: str) -> None:
    await db.execute("UPDATE post_submissions SET post_uri = %s WHERE id = %s", (uri, reservation))


async def release(db: Database, reservation: int) -> None:
    await db.execute("DELETE FROM post_submissions WHERE id = %s", (reservation,))


async def retry_after(db: Database, author: str, community: str | None, now: datetime) -> float:
    """Seconds until the oldest submission counted against a limit leaves the hour."""
    oldest = await db.fetchval(
        """
        SELECT min(created_at) FROM post_submissions
        WHERE author_did = %s AND (%s::text IS NULL OR community_did = %s) AND created_at > %s
        """,
        (author, community, community, now - HOUR),
    )
    if oldest is None:
        return 1.0
    remaining: float = (oldest + HOUR - now).total_seconds()
    return max(1.0, remaining)


async def content_rules(db: Database, community: str) -> object:
    """The ``contentRules`` of a community's profile record (None when absent)."""
    return await db.fetchval(
        "SELECT record->'contentRules' FROM communities WHERE did = %s", (community,)
    )


async def has_service_record(db: Database, did: str) -> bool:
    """Whether ``did`` declared itself an aggregator (an indexed service record)."""
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM aggregators WHERE did = %s AND deleted_at IS NULL)",
            (did,),
        )
    )
