"""Instance secrets (sealed bytes; this module never sees plaintext)."""

from __future__ import annotations

from coves.db import Database


async def get_secret(db: Database, name: str) -> bytes | None:
    value = await db.fetchval("SELECT sealed FROM instance_secrets WHERE name = %s", (name,))
    return bytes(value) if value is not None else None


async def insert_secret(db: Database, name: str, sealed: bytes) -> None:
    await db.execute(
        "INSERT INTO instance_secrets (name, sealed) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
        (name, sealed),
    )
