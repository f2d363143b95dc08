"""Small helpers shared by the indexer tests."""

from __future__ import annotations

from typing import Any

import trio

from coves.db import Database, Row
from coves.ingest.indexer import Indexer
from coves.ingest.types import BatchResult
from tests.support.events import frames


async def apply(indexer: Indexer, *events: dict[str, Any] | str | bytes) -> BatchResult:
    with trio.fail_after(15):
        return await indexer.apply(frames(*events))


async def one(db: Database, query: str, *params: Any) -> Row:
    with trio.fail_after(10):
        row = await db.fetchrow(query, params)
    assert row is not None, query
    return row


async def value(db: Database, query: str, *params: Any) -> Any:
    with trio.fail_after(10):
        return await db.fetchval(query, params)
