from coves.db import Database


async def test_fresh_database_has_schema_and_no_rows(db: Database) -> None:
    assert await db.fetchval("SELECT count(*) FROM posts") == 0
    await db.execute(
        "INSERT INTO users (did, handle) VALUES (%s, %s)", ("did:plc:abc", "alice.test")
    )
    assert (
        await db.fetchval("SELECT handle FROM users WHERE did = %s", ("did:plc:abc",))
        == "alice.test"
    )


async def test_each_test_gets_its_own_database(db: Database) -> None:
    assert await db.fetchval("SELECT count(*) FROM users") == 0
