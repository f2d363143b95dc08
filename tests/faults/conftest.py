"""Fixtures for the fault tests: scratch directories for real ``coves`` processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from quart_trio import QuartTrio

from coves.config import Settings
from coves.db import Database
from tests.faults.fuzzing import build_fuzz_app


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A scratch directory a PostgreSQL run as another user can traverse (not tmp_path:
    pytest resets its temp root to 0700 whenever a pytest run starts)."""
    root = Path(tempfile.mkdtemp(prefix="coves-fault-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fuzz_app(settings: Settings, db: Database) -> QuartTrio:
    """The production app, offline (tests/faults/fuzzing.py)."""
    return build_fuzz_app(settings, db)
