"""Listing snapshots in PostgreSQL: one text value, no durable commit, a bounded table."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from coves.db import Database
from coves.db.migrate import apply_migrations, load_migrations
from coves.db.queries import snapshots as snapshot_sql
from coves.read.snapshots import SnapshotStore, SqlCompute
from tests.support.database import TestPostgres
from tests.support.hops import RunCounter

URIS = [f"at://did:plc:{i:024d}/social.coves.community.post/3k{i:011d}" for i in range(1000)]


async def test_a_snapshot_round_trips_through_the_database(db: Database) -> None:
    await snapshot_sql.insert(db, "s1", "discover::hot:", URIS, 60.0)
    await snapshot_sql.insert(db, "s2", "discover::top:day", [], 60.0)
    row = await snapshot_sql.get(db, "s1")
    assert row is not None
    assert row["key"] == "discover::hot:" and row["items"] == URIS
    empty = await snapshot_sql.get(db, "s2")
    assert empty is not None and empty["items"] == []
    assert await snapshot_sql.get(db, "nope") is None


async def test_a_cursor_from_another_process_loads_the_same_order(db: Database) -> None:
    """Each worker has its own store; the frozen order is shared through the table."""
    mine, theirs = SnapshotStore(db), SnapshotStore(db)

    async def compute() -> list[str]:
        return URIS[:50]

    made = await mine.current("community:x:hot:", compute)
    loaded = await theirs.load(made.id)
    assert loaded is not None
    assert loaded.items == made.items and loaded.key == made.key


async def test_a_listing_computed_by_statements_is_stored_in_the_same_hop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SqlCompute runs its statements and the snapshot's insert on one connection:
    one Database.run, and the stored order is what another process loads."""
    mine, theirs = SnapshotStore(db), SnapshotStore(db)
    hops = RunCounter(db, monkeypatch)

    def ranked(conn: Any) -> list[str]:
        rows = conn.execute("SELECT unnest(%s::text[]) AS uri", (URIS[:40],)).fetchall()
        return [row["uri"] for row in rows]

    made = await mine.current("community:x:top:day", SqlCompute(db, ranked))
    assert hops.calls == 1 and made.items == tuple(URIS[:40])
    loaded = await theirs.load(made.id)
    assert loaded is not None and loaded.items == made.items and hops.calls == 2
    assert await SqlCompute(db, ranked)() == URIS[:40]  # awaited alone: its own hop


async def test_the_table_is_unlogged_and_swept_to_its_bounds(db: Database) -> None:
    persistence = await db.fetchval(
        "SELECT relpersistence FROM pg_class WHERE relname = 'listing_snapshots'"
    )
    assert persistence == "u"  # no WAL: nothing to flush on commit
    for i in range(12):
        await snapshot_sql.insert(db, f"live{i:02d}", "k", URIS[:3], 600.0 + i)
    for i in range(3):
        await snapshot_sql.insert(db, f"gone{i}", "k", URIS[:3], 600.0)
    await db.execute(
        "UPDATE listing_snapshots SET expires_at = now() - interval '1 s' WHERE id LIKE 'gone%'"
    )
    assert await snapshot_sql.sweep(db, max_rows=10) == 5  # 3 expired, then the 2 oldest
    left = [r["id"] for r in await db.fetch("SELECT id FROM listing_snapshots ORDER BY id")]
    assert left == [f"live{i:02d}" for i in range(2, 12)]
    assert await snapshot_sql.sweep(db, max_rows=10) == 0


async def test_the_migration_keeps_live_snapshots(pg: TestPostgres) -> None:
    name = await trio.to_thread.run_sync(pg.create_empty_database)

    def migrate_around_old_rows() -> list[dict[str, object]]:
        migrations = load_migrations()
        before = [m for m in migrations if m.version < 81]
        with psycopg.connect(pg.conninfo(name), autocommit=True, row_factory=dict_row) as conn:
            apply_migrations(conn, before)  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO listing_snapshots (id, key, items, taken_at, expires_at) VALUES"
                " ('old', 'k', %s, 1, now() + interval '1 h'),"
                " ('expired', 'k', %s, 1, now() - interval '1 h')",
                (URIS[:3], URIS[:3]),
            )
            apply_migrations(conn, migrations)  # type: ignore[arg-type]
            return conn.execute("SELECT id, items FROM listing_snapshots").fetchall()

    try:
        rows = await trio.to_thread.run_sync(migrate_around_old_rows)
    finally:
        await trio.to_thread.run_sync(pg.drop_database, name)
    assert rows == [{"id": "old", "items": "\n".join(URIS[:3])}]
