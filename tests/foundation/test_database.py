"""The database layer: migrations, the pool from Trio, timeouts, the instance key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import psycopg
import pytest
import trio

from coves.atproto.keys import parse_multikey
from coves.context import AppContext
from coves.db import Database, QueryTimeout
from coves.db.migrate import Migration, MigrationError, load_migrations, migrate
from coves.instance import SIGNING_KEY_NAME, instance_did_document
from coves.metrics import Metrics
from coves.xrpc.app import create_app
from tests.support.database import TestPostgres

M1 = Migration(1, "one", "CREATE TABLE m_one (id int);")
M2 = Migration(2, "two", "CREATE TABLE m_two (id int);")
M3 = Migration(3, "three", "INSERT INTO m_one VALUES (3);")


@pytest.fixture
async def empty_db(pg: TestPostgres) -> AsyncIterator[Database]:
    name = await trio.to_thread.run_sync(pg.create_empty_database)
    database = Database(pg.conninfo(name), pool_size=3, statement_timeout_ms=5_000)
    await database.open()
    try:
        yield database
    finally:
        await database.close()
        await trio.to_thread.run_sync(pg.drop_database, name)


def test_shipped_migrations_are_numbered_and_ordered() -> None:
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert versions[0] == 1 and migrations[0].name == "core"


async def test_migrations_apply_in_order_once(empty_db: Database) -> None:
    with trio.fail_after(30):
        done = await migrate(empty_db, [M1, M2])
        assert [m.version for m in done] == [1, 2]
        assert await migrate(empty_db, [M1, M2, M3]) == [M3]
        assert await migrate(empty_db, [M1, M2, M3]) == []
        rows = await empty_db.fetch("SELECT version, checksum FROM schema_migrations ORDER BY 1")
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (m.version, m.checksum) for m in (M1, M2, M3)
    ]


async def test_edited_migration_is_an_error(empty_db: Database) -> None:
    with trio.fail_after(30):
        await migrate(empty_db, [M1])
        edited = Migration(1, "one", "CREATE TABLE m_one (id bigint);")
        with pytest.raises(MigrationError, match="edited after it was applied"):
            await migrate(empty_db, [edited])


async def test_unknown_applied_version_is_an_error(empty_db: Database) -> None:
    with trio.fail_after(30):
        await migrate(empty_db, [M1, M2])
        with pytest.raises(MigrationError, match=r"does not know: \[2\]"):
            await migrate(empty_db, [M1])


async def test_failed_migration_rolls_back_and_is_not_recorded(empty_db: Database) -> None:
    broken = Migration(2, "broken", "CREATE TABLE m_half (id int); SELECT 1/0;")
    with trio.fail_after(30):
        await migrate(empty_db, [M1])
        with pytest.raises(psycopg.errors.DivisionByZero):
            await migrate(empty_db, [M1, broken])
        assert await empty_db.fetchval("SELECT to_regclass('m_half')") is None
        assert await empty_db.fetchval("SELECT max(version) FROM schema_migrations") == 1


async def test_concurrent_migrators_are_serialised(empty_db: Database) -> None:
    slow = Migration(1, "slow", "SELECT pg_sleep(0.3); CREATE TABLE m_slow (id int);")
    results: list[list[Migration]] = []

    async def one() -> None:
        async with Database(empty_db.conninfo, pool_size=1) as db:
            results.append(await migrate(db, [slow, M2]))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
    # Exactly one migrator applied everything; the others found nothing to do.
    assert sorted(len(r) for r in results) == [0, 0, 2]


async def test_statement_timeout_raises_query_timeout(pg: TestPostgres) -> None:
    name = await trio.to_thread.run_sync(pg.create_empty_database)
    try:
        async with Database(pg.conninfo(name), pool_size=2, statement_timeout_ms=100) as db:
            with trio.fail_after(10), pytest.raises(QueryTimeout):
                await db.execute("SELECT pg_sleep(2)")
            # The connection is still usable afterwards.
            assert await db.fetchval("SELECT 41 + 1") == 42
    finally:
        await trio.to_thread.run_sync(pg.drop_database, name)


async def test_transaction_commits_or_rolls_back(db: Database) -> None:
    await db.execute("CREATE TABLE t_tx (v int)")
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t_tx VALUES (1)")
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t_tx VALUES (2)")
            raise RuntimeError("abort")
    assert [r["v"] for r in await db.fetch("SELECT v FROM t_tx")] == [1]


async def test_pool_concurrency_is_bounded_by_limiter(db: Database) -> None:
    peak = 0

    async def query() -> None:
        nonlocal peak
        await db.fetchval("SELECT pg_sleep(0.05)")
        peak = max(peak, db.stats().in_use)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for _ in range(12):
                nursery.start_soon(query)
    assert 1 <= peak <= db.pool_size
    assert db.stats().waiting == 0


async def test_did_document_key_is_stable_and_sealed(ctx: AppContext) -> None:
    first = await instance_did_document(ctx.settings, ctx.instance_key)
    assert first is not None
    assert first["id"] == "did:web:localhost"
    assert first["alsoKnownAs"] == ["at://localhost"]
    method = first["verificationMethod"][0]
    assert method["id"] == "did:web:localhost#atproto" and method["type"] == "Multikey"
    key = parse_multikey(method["publicKeyMultibase"])
    services = {s["id"]: s for s in first["service"]}
    assert services["#atproto_pds"]["serviceEndpoint"] == ctx.settings.pds_url
    assert services["#coves_appview"]["serviceEndpoint"] == ctx.settings.appview_public_url

    # A new process (fresh context, same database) publishes the same key.
    again = AppContext(settings=ctx.settings, db=ctx.db, metrics=Metrics())
    second = await instance_did_document(again.settings, again.instance_key)
    assert second == first

    sealed = await ctx.db.fetchval(
        "SELECT sealed FROM instance_secrets WHERE name = %s", (SIGNING_KEY_NAME,)
    )
    stored = await again.instance_key.get()
    private_hex = stored.to_hex()
    assert private_hex.encode() not in bytes(sealed)
    assert bytes.fromhex(private_hex) not in bytes(sealed)
    assert key.multikey() == method["publicKeyMultibase"]
    # The published key verifies what the stored private key signs.
    assert key.verify(b"coves", stored.sign(b"coves"))


async def test_did_json_and_health_over_http(ctx: AppContext) -> None:
    app = create_app(ctx, {})
    client = app.test_client()
    response = await client.get("/.well-known/did.json")
    assert response.status_code == 200
    assert (await response.get_json())["id"] == "did:web:localhost"
    health = await client.get("/xrpc/_health")
    assert health.status_code == 200
    body = await health.get_json()
    assert body["database"] == {"reachable": True} and body["status"] == "ok"
    assert body["version"]


async def test_health_is_503_when_a_critical_child_is_down(ctx: AppContext) -> None:
    class Down:
        healthy = False

        def health_report(self) -> dict[str, object]:
            return {"jetstream": {"status": "backoff", "restarts": 3}}

    ctx = replace(ctx, health=Down())
    response = await create_app(ctx, {}).test_client().get("/xrpc/_health")
    assert response.status_code == 503
    assert (await response.get_json())["children"]["jetstream"]["status"] == "backoff"
