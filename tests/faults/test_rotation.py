"""Key rotation over the sealed-column registry, and the start-up key check."""

from __future__ import annotations

import base64
import os

import pytest
import trio

from coves.db import Database
from coves.db.queries import instance as instance_sql
from coves.db.sealed import (
    INSTANCE_SECRETS,
    SEALED_COLUMNS,
    SealedColumn,
    sealed_bytea_columns,
)
from coves.rotation import SealedDataError, check_sealed_data, rotate_keys
from coves.secrets import Secret, SecretBox, sealed_key_id


def new_key() -> Secret:
    return Secret(base64.b64encode(os.urandom(32)).decode())


async def put(db: Database, box: SecretBox, name: str, value: bytes) -> None:
    sealed = box.seal(value, context=INSTANCE_SECRETS.context({"name": name}))
    await instance_sql.insert_secret(db, name, sealed)


async def opened(db: Database, box: SecretBox, name: str) -> bytes:
    sealed = await instance_sql.get_secret(db, name)
    assert sealed is not None
    return box.open(sealed, context=INSTANCE_SECRETS.context({"name": name}))


async def test_every_sealed_column_in_the_schema_is_registered(db: Database) -> None:
    found = await db.run(sealed_bytea_columns, transaction=False)
    registered = {(c.table, c.column) for c in SEALED_COLUMNS}
    assert ("instance_secrets", "sealed") in found
    assert set(found) <= registered, f"register these in coves.db.sealed: {set(found) - registered}"
    # The probe would notice a new, unregistered one.
    await db.execute("CREATE TABLE probe_tokens (id text PRIMARY KEY, token_sealed bytea)")
    assert ("probe_tokens", "token_sealed") in await db.run(sealed_bytea_columns, transaction=False)


async def test_check_refuses_keys_that_cannot_open_the_data_and_names_them(
    db: Database,
) -> None:
    old, new = new_key(), new_key()
    await put(db, SecretBox(old), "instance_signing_key", b"k" * 32)
    with trio.fail_after(10):
        with pytest.raises(SealedDataError) as info:
            await check_sealed_data(db, SecretBox(new))
    message = str(info.value)
    assert SecretBox(old).current_key_id in message
    assert "instance_secrets.sealed" in message and "ENCRYPTION_OLD_KEYS" in message
    # With the old key in the ring, everything opens.
    await check_sealed_data(db, SecretBox(new, old_keys=[old]))


async def test_check_passes_on_an_empty_database(db: Database) -> None:
    with trio.fail_after(10):
        await check_sealed_data(db, SecretBox(new_key()))


async def test_check_names_a_value_moved_to_another_row(db: Database) -> None:
    box = SecretBox(new_key())
    await put(db, box, "a", b"secret")
    moved = await instance_sql.get_secret(db, "a")
    assert moved is not None
    await instance_sql.insert_secret(db, "b", moved)  # sealed for row "a", stored in "b"
    await db.execute("DELETE FROM instance_secrets WHERE name = 'a'")
    with trio.fail_after(10), pytest.raises(SealedDataError) as info:
        await check_sealed_data(db, box)
    assert "name='b'" in str(info.value)


async def test_rotation_reseals_everything_so_the_old_key_can_go(db: Database) -> None:
    old, new = new_key(), new_key()
    for i in range(3):
        await put(db, SecretBox(old), f"s{i}", f"value {i}".encode())
    ring = SecretBox(new, old_keys=[old])
    await put(db, ring, "already-new", b"fresh")
    with trio.fail_after(20):
        report = await rotate_keys(db, ring)
        assert report.resealed["instance_secrets.sealed"] == 3
        assert report.current["instance_secrets.sealed"] == 1
        assert not report.failed
        only_new = SecretBox(new)
        await check_sealed_data(db, only_new)
        for i in range(3):
            assert await opened(db, only_new, f"s{i}") == f"value {i}".encode()
            sealed = await instance_sql.get_secret(db, f"s{i}")
            assert sealed is not None and sealed_key_id(sealed) == only_new.current_key_id
        again = await rotate_keys(db, ring)
    assert sum(again.resealed.values()) == 0


async def test_rotation_lists_values_no_key_opens_and_leaves_them(db: Database) -> None:
    lost, new = new_key(), new_key()
    await put(db, SecretBox(lost), "orphan", b"x")
    before = await instance_sql.get_secret(db, "orphan")
    with trio.fail_after(10):
        report = await rotate_keys(db, SecretBox(new))
    assert len(report.failed) == 1 and "name='orphan'" in report.failed[0]
    assert await instance_sql.get_secret(db, "orphan") == before


async def test_rotation_pages_through_many_rows_of_a_registered_table(db: Database) -> None:
    """A column added to the registry with a two-column key, more rows than one batch."""
    await db.execute(
        "CREATE TABLE probe_sessions (did text, sid int, dpop_sealed bytea, PRIMARY KEY (did, sid))"
    )
    entry = SealedColumn(
        "probe_sessions",
        ("did", "sid"),
        "dpop_sealed",
        lambda row: f"session {row['did']} {row['sid']}",
    )
    old, new = new_key(), new_key()
    box = SecretBox(old)
    rows = [
        (f"did:plc:{i % 7}", i, box.seal(str(i).encode(), context=f"session did:plc:{i % 7} {i}"))
        for i in range(1200)
    ]

    def load(conn):  # type: ignore[no-untyped-def]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO probe_sessions VALUES (%s, %s, %s)", rows)

    await db.run(load)
    ring = SecretBox(new, old_keys=[old])
    with trio.fail_after(60):
        report = await rotate_keys(db, ring, (entry,))
        assert report.resealed["probe_sessions.dpop_sealed"] == 1200
        await check_sealed_data(db, SecretBox(new), (entry,))
