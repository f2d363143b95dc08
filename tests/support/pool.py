"""Driving the database pool to saturation deterministically (threads held on an event)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from coves.db import Database


@asynccontextmanager
async def saturated(db: Database, queued: int = 5) -> AsyncIterator[None]:
    """Every pooled connection held by a blocked unit of work, and ``queued`` more waiting."""
    hold = threading.Event()

    def busy(conn: Any) -> None:
        hold.wait(30)

    async with trio.open_nursery() as nursery:
        for _ in range(db.pool_size + queued):
            nursery.start_soon(db.run, busy)
        while db.stats().waiting < queued:
            await trio.sleep(0.01)
        try:
            yield
        finally:
            hold.set()
