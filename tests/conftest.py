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
from tests.support.pds import TestPds, start_test_pds

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


@pytest.fixture(scope="session")
def pds() -> Iterator[TestPds]:
    """Bluesky's reference PDS + a PLC directory (started on first use, once)."""
    root = Path(tempfile.mkdtemp(prefix="coves-test-pds-"))
    try:
        server = start_test_pds(root)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


_PDS_LOG_OFFSETS = pytest.StashKey[dict[Path, int]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach what the PDS and PLC logged during a failed test to its report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    server = getattr(item, "funcargs", {}).get("pds")
    if not isinstance(server, TestPds):
        return
    logs = (server.pds_log, server.plc_log)
    if call.when == "setup":
        item.stash[_PDS_LOG_OFFSETS] = {p: p.stat().st_size if p.exists() else 0 for p in logs}
    if report.failed:
        offsets = item.stash.get(_PDS_LOG_OFFSETS, {})
        for path in logs:
            if path.exists():
                with path.open("rb") as f:
                    f.seek(offsets.get(path, 0))
                    text = f.read()[-20_000:].decode(errors="replace")
                report.sections.append((f"{path.name} during this test", text))


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
