"""The database for one-shot commands (``coves migrate``, ``coves rotate-key``).

The same choice ``coves serve`` makes: ``DATABASE_URL`` when set, else the
embedded PostgreSQL under the data directory, started for the command and
stopped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from coves.config import Settings
from coves.db._pool import Database
from coves.db.embedded import EmbeddedPostgres


@asynccontextmanager
async def tool_database(settings: Settings, *, pool_size: int = 1) -> AsyncIterator[Database]:
    async with trio.open_nursery() as nursery:
        if settings.database_url is None:
            conninfo: str = await nursery.start(EmbeddedPostgres(settings.data_dir).run)
        else:
            conninfo = settings.database_url.reveal()
        async with Database(
            conninfo, pool_size=pool_size, statement_timeout_ms=settings.db_statement_timeout_ms
        ) as db:
            yield db
        nursery.cancel_scope.cancel()
