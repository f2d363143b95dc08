from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver warns about XDG_RUNTIME_DIR on import
    import pgserver  # noqa: F401

from coves.config import Settings, test_settings
from coves.context import AppContext
from coves.db import Database
from coves.logs import configure_logging
from coves.metrics import Metrics
from tests.support.database import TestPostgres, start_test_postgres

configure_logging("debug", "console")


@pytest.fixture(scope="session")
def pg() -> Iterator[TestPostgres]:
    # Not under pytest's tmp_path: pytest deletes all but the newest three
    # numbered temp roots, so a concurrent pytest run would remove the data
    # directory of a server that is still running.
    root = Path(tempfile.mkdtemp(prefix="coves-test-pg-"))
    server = start_test_postgres(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def db(pg: TestPostgres) -> AsyncIterator[Database]:
    name = await trio.to_thread.run_sync(pg.create_database)
    database = Database(pg.conninfo(name), pool_size=4, statement_timeout_ms=20_000)
    await database.open()
    try:
        yield database
    finally:
        await database.close()
        await trio.to_thread.run_sync(pg.drop_database, name)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A scratch directory an embedded PostgreSQL run as another user can traverse.

    Not ``tmp_path``: pytest resets its temp root to mode 0700 whenever a
    pytest run starts, which locks the unprivileged server user out.
    """
    root = Path(tempfile.mkdtemp(prefix="coves-scratch-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def settings() -> Settings:
    return test_settings()


@pytest.fixture
def ctx(settings: Settings, db: Database) -> AppContext:
    return AppContext(settings=settings, db=db, metrics=Metrics())
