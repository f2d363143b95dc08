"""Small supervised children that do one thing every few seconds.

A tick that fails on the database is logged and tried again at the next
tick: these are upkeep (heartbeats, shared rate-limit counts, sweeps), and a
database outage is reported by ``_health``, not by restarting them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from coves.db import DatabaseError
from coves.logs import get_logger
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)


class Periodic:
    def __init__(
        self,
        name: str,
        interval: float,
        tick: Callable[[], Awaitable[object]],
        *,
        on_stop: Callable[[], Awaitable[object]] | None = None,
        first_tick_now: bool = True,
    ) -> None:
        self.name = name
        self.interval = interval
        self._tick = tick
        self._on_stop = on_stop
        self._first_tick_now = first_tick_now
        self.ticks = 0
        self.failures = 0
        self.last_error: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        try:
            if not self._first_tick_now:
                await trio.sleep(self.interval)
            while True:
                await self.tick_once()
                await trio.sleep(self.interval)
        finally:
            if self._on_stop is not None:
                with trio.move_on_after(2.0) as scope:
                    scope.shield = True
                    try:
                        await self._on_stop()
                    except DatabaseError as exc:
                        log.info("periodic stop step failed", child=self.name, error=repr(exc))

    async def tick_once(self) -> None:
        try:
            await self._tick()
            self.ticks += 1
        except DatabaseError as exc:
            self.failures += 1
            self.last_error = repr(exc)
            log.warning("periodic task failed; will retry", child=self.name, error=repr(exc))

    def details(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "failures": self.failures, "lastError": self.last_error}


def periodic_child(periodic: Periodic) -> ChildSpec:
    return ChildSpec(periodic.name, periodic.run, critical=False, details=periodic.details)
