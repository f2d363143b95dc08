"""Operator queries: dead letters, the stream cursor, backups, the schema version.

Used by the operator's commands (``coves status``, ``coves dead-letters``,
``coves backup``) and by the facts child that feeds ``/metrics`` and
``_health``; none of them is on a request or ingestion hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coves.db import Database, Row

_LETTER_COLUMNS = "id, received_at, reason, detail, did, collection, rkey, time_us"


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    count: int
    newest: datetime


async def dead_letter_counts(db: Database) -> list[ReasonCount]:
    rows = await db.fetch(
        "SELECT reason, count(*) AS n, max(received_at) AS newest FROM dead_letters "
        "GROUP BY reason ORDER BY n DESC, reason"
    )
    return [ReasonCount(r["reason"], r["n"], r["newest"]) for r in rows]


async def list_dead_letters(
    db: Database, *, reason: str | None, before_id: int | None, limit: int
) -> list[Row]:
    """Newest first; ``before_id`` pages backwards."""
    return await db.fetch(
        f"SELECT {_LETTER_COLUMNS} FROM dead_letters "
        "WHERE (%(reason)s::text IS NULL OR reason = %(reason)s) "
        "AND (%(before)s::bigint IS NULL OR id < %(before)s) "
        "ORDER BY id DESC LIMIT %(limit)s",
        {"reason": reason, "before": before_id, "limit": limit},
    )


async def get_dead_letters(db: Database, ids: list[int]) -> list[Row]:
    return await db.fetch(
        f"SELECT {_LETTER_COLUMNS}, raw FROM dead_letters WHERE id = ANY(%s) ORDER BY id",
        (ids,),
    )


async def dead_letter_ids(db: Database, *, reason: str | None, limit: int) -> list[int]:
    """Oldest first, so a retry re-applies events in stream order."""
    rows = await db.fetch(
        "SELECT id FROM dead_letters WHERE (%(reason)s::text IS NULL OR reason = %(reason)s) "
        "ORDER BY id LIMIT %(limit)s",
        {"reason": reason, "limit": limit},
    )
    return [r["id"] for r in rows]


async def delete_dead_letters(db: Database, ids: list[int]) -> int:
    return await db.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (ids,))


async def newest_dead_letter_id(db: Database) -> int:
    return int(await db.fetchval("SELECT coalesce(max(id), 0) FROM dead_letters"))


async def dead_letter_details_since(db: Database, after_id: int, limit: int = 10) -> list[Row]:
    """The commonest (reason, detail) pairs among letters newer than ``after_id``."""
    return await db.fetch(
        "SELECT reason, detail, count(*) AS n FROM dead_letters WHERE id > %s "
        "GROUP BY reason, detail ORDER BY n DESC, reason LIMIT %s",
        (after_id, limit),
    )


async def cursors(db: Database) -> list[Row]:
    return await db.fetch("SELECT name, time_us, updated_at FROM ingest_cursor ORDER BY name")


async def flush_commits(db: Database) -> None:
    """Make every earlier asynchronous commit durable.

    Ingestion commits with ``synchronous_commit = off``; a transaction that
    takes a transaction id and commits synchronously flushes the WAL up to its
    own commit record, which covers all of them.
    """

    def work(conn: Any) -> None:
        conn.execute("SET LOCAL synchronous_commit = on")
        conn.execute("SELECT pg_current_xact_id()")

    await db.run(work)


async def schema_version(db: Database) -> int | None:
    """The newest applied migration, or None on a database never migrated."""
    exists = await db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return None
    value = await db.fetchval("SELECT max(version) FROM schema_migrations")
    return None if value is None else int(value)


async def server_version_num(db: Database) -> int:
    return int(await db.fetchval("SELECT current_setting('server_version_num')::int"))


# -- backups -------------------------------------------------------------------------


async def has_table(db: Database, name: str) -> bool:
    return bool(await db.fetchval("SELECT to_regclass(%s) IS NOT NULL", (f"public.{name}",)))


async def record_backup(
    db: Database,
    *,
    started_at: datetime,
    ok: bool,
    file: str | None,
    size_bytes: int | None,
    sha256: str | None,
    schema_version: int | None,
    error: str | None,
) -> None:
    await db.execute(
        "INSERT INTO backups (started_at, ok, file, size_bytes, sha256, schema_version, error) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (started_at, ok, file, size_bytes, sha256, schema_version, error),
    )


@dataclass(frozen=True)
class BackupFacts:
    last_ok_at: datetime | None
    last_ok_file: str | None
    last_ok_size: int | None
    last_failure_at: datetime | None
    last_failure_error: str | None


async def backup_facts(db: Database) -> BackupFacts:
    ok = await db.fetchrow(
        "SELECT finished_at, file, size_bytes FROM backups WHERE ok "
        "ORDER BY finished_at DESC LIMIT 1"
    )
    failed = await db.fetchrow(
        "SELECT finished_at, error FROM backups WHERE NOT ok ORDER BY finished_at DESC LIMIT 1"
    )
    return BackupFacts(
        last_ok_at=ok["finished_at"] if ok else None,
        last_ok_file=ok["file"] if ok else None,
        last_ok_size=ok["size_bytes"] if ok else None,
        last_failure_at=failed["finished_at"] if failed else None,
        last_failure_error=failed["error"] if failed else None,
    )


async def table_names(db: Database) -> list[str]:
    """Every ordinary table of the public schema (what a backup must carry)."""
    rows = await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [r["tablename"] for r in rows]


async def other_sessions(db: Database) -> list[Row]:
    """Other connections to this database (a running Coves shows as application 'coves')."""
    return await db.fetch(
        "SELECT pid, application_name, client_addr::text AS client FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )


async def reset_public_schema(db: Database) -> None:
    """Empty the database for a restore: every object in ``public`` goes, in one transaction."""

    def work(conn: Any) -> None:
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")

    await db.run(work)


def recreate_database(admin_conninfo: str, name: str) -> None:
    """Drop and create ``name`` from the maintenance database (the embedded server's restore)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


async def row_counts(db: Database) -> dict[str, int]:
    """Exact rows per table (restore's report; the round-trip test compares more)."""
    from psycopg import sql

    counts: dict[str, int] = {}
    for table in await table_names(db):

        def work(conn: Any, table: str = table) -> int:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            return int(conn.execute(query).fetchone()["count"])

        counts[table] = await db.run(work, transaction=False)
    return counts


async def clear_identity_cache(db: Database) -> int:
    return await db.execute("DELETE FROM identity_cache")


async def clear_listing_snapshots(db: Database) -> int:
    return await db.execute("DELETE FROM listing_snapshots")
