"""Fixtures for the operations tests: scratch data directories and external databases."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from coves.logs import configure_logging
from tests.support.database import TestPostgres


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything logged during the test, as production JSON lines."""
    buffer = io.StringIO()
    configure_logging("debug", "json", stream=buffer)
    try:
        yield buffer
    finally:
        configure_logging("debug", "console")


def database_url(pg: TestPostgres, name: str) -> str:
    """A DATABASE_URL for a database of the session server (its unix socket)."""
    info = dict(part.split("=", 1) for part in pg.conninfo(name).split())
    return f"postgresql://{info['user']}@/{info['dbname']}?host={info['host']}&port={info['port']}"


@pytest.fixture
async def external(pg: TestPostgres) -> AsyncIterator[str]:
    """A migrated database on the session server, as its name (dropped afterwards)."""
    name = await trio.to_thread.run_sync(pg.create_database)
    try:
        yield name
    finally:
        await trio.to_thread.run_sync(pg.drop_database, name)
