"""The database an operator's command works on: the running instance's when there is one.

``coves serve`` with the embedded PostgreSQL holds the data directory; a
second embedded server on it is refused (two postmasters must never share a
cluster). Operator commands (replay, status, dead-letters, backup) therefore
first look for a live server on the data directory and connect to its
socket; only when none runs do they start the embedded server themselves,
for the duration of the command. With ``DATABASE_URL`` they simply connect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from coves.config import Settings
from coves.db import Database
from coves.db.embedded import EmbeddedPostgres


@dataclass(frozen=True)
class Attached:
    """How a command reached its database (shown by ``coves status``)."""

    conninfo: str
    kind: str  # "external", "embedded (running instance)", "embedded (started)"

    @property
    def shared_with_server(self) -> bool:
        return self.kind == "embedded (running instance)"


def running_embedded(settings: Settings) -> EmbeddedPostgres | None:
    """The embedded server of this data directory, if one is up and answering."""
    server = EmbeddedPostgres(settings.data_dir)
    if server.running_pid() is None:
        return None
    return server if server.try_connect() else None


@asynccontextmanager
async def operator_conninfo(settings: Settings) -> AsyncIterator[Attached]:
    """Yield a conninfo for the instance's database, starting the embedded server if needed."""
    if settings.database_url is not None:
        yield Attached(settings.database_url.reveal(), "external")
        return
    live = await trio.to_thread.run_sync(running_embedded, settings)
    if live is not None:
        yield Attached(live.conninfo(), "embedded (running instance)")
        return
    async with trio.open_nursery() as nursery:
        conninfo: str = await nursery.start(EmbeddedPostgres(settings.data_dir).run)
        try:
            yield Attached(conninfo, "embedded (started)")
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def operator_database(
    settings: Settings, *, pool_size: int = 2
) -> AsyncIterator[tuple[Database, Attached]]:
    """An open :class:`Database` on the instance's data (see :func:`operator_conninfo`)."""
    async with operator_conninfo(settings) as attached:
        db = Database(
            attached.conninfo,
            pool_size=pool_size,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            application_name="coves-cli",
        )
        await db.probe()  # fail at once when unreachable, not after the pool's 30 s wait
        async with db:
            yield db, attached
