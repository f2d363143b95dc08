"""Fixtures for the foundation tests: an app with a hand-made route table."""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from coves.config import Settings, test_settings
from coves.context import AppContext
from coves.db import Database
from coves.logs import configure_logging
from coves.metrics import Metrics


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything logged during the test, rendered as production JSON lines."""
    buffer = io.StringIO()
    configure_logging("debug", "json", stream=buffer)
    try:
        yield buffer
    finally:
        configure_logging("debug", "console")


def offline_context(settings: Settings | None = None) -> AppContext:
    """A context whose database is never opened: for pure HTTP behaviour tests.

    Anything that touches it fails with DatabaseUnavailable, which is what a
    database outage looks like to the app.
    """
    db = Database("host=/nonexistent dbname=none", pool_size=1, connect_timeout_s=0.2)
    return AppContext(settings=settings or test_settings(), db=db, metrics=Metrics())


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A scratch directory a PostgreSQL run as another user can traverse.

    Not ``tmp_path``: pytest resets its temp root to mode 0700 whenever any
    pytest run starts, which locks the unprivileged server user out.
    """
    root = Path(tempfile.mkdtemp(prefix="coves-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
