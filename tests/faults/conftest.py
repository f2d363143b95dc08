"""Fixtures for the fault tests: scratch directories for real ``coves`` processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


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
