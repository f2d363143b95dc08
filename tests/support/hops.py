"""Counting thread hops: each ``Database.run`` is one trip to a worker thread and one
pool checkout, which tests of the read path's cost bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coves.db import Database


class RunCounter:
    """Counts the ``run`` calls made on ``db`` (``fetch`` & co. included)."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = db.run

        async def run(fn: Callable[[Any], Any], *, transaction: bool = True) -> Any:
            self.calls += 1
            return await real(fn, transaction=transaction)

        monkeypatch.setattr(db, "run", run)
