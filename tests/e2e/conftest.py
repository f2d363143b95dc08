from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """Where a ``coves serve`` of the test keeps its data and log (a PostgreSQL run as
    another user must be able to traverse it: not pytest's 0700 tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="coves-e2e-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
