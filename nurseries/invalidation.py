"""The invalidation listener: other processes' cache drops, applied here.

Keeps one LISTEN connection (coves/db/listen.py) open, reconnecting with
jittered backoff when it fails. Every reconnection after the first means
notifications may have been missed while away, so the process's
invalidated caches are dropped whole (``Invalidation.on_gap``).
"""

from __future__ import annotations

import random
from typing import Any

import trio

from coves.db import DatabaseUnavailable
from coves.db.listen import listen
from coves.invalidation import CHANNEL, Invalidation
from coves.logs import get_logger
from nurseries.backoff import ExponentialBackoff
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)


class InvalidationListener:
    def __init__(
        self,
        conninfo: str,
        invalidation: Invalidation,
        *,
        poll: float = 1.0,
        probe_every: float = 30.0,
        backoff: ExponentialBackoff | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.invalidation = invalidation
        self.poll = poll
        self.probe_every = probe_every
        self.backoff = backoff or ExponentialBackoff(base=0.5, cap=10.0, rng=random.Random())
        self.connected = False
        self.connections = 0
        self.last_error: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        started = False

        def listening() -> None:
            nonlocal started
            if self.connections:
                self.invalidation.on_gap()
            self.connections += 1
            self.connected = True
            self.backoff.reset()
            if not started:
                started = True
                task_status.started(self)

        while True:
            try:
                await listen(
                    self.conninfo,
                    CHANNEL,
                    self.invalidation.deliver,
                    on_listening=listening,
                    poll=self.poll,
                    probe_every=self.probe_every,
                )
            except DatabaseUnavailable as exc:
                self.last_error = repr(exc)
                log.warning("invalidation listener lost its connection", error=repr(exc))
            self.connected = False
            if not started:  # the caches still expire by TTL: do not hold start-up back
                started = True
                task_status.started(self)
            await trio.sleep(self.backoff.next_delay())

    def details(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "connections": self.connections,
            "received": self.invalidation.received,
            "published": self.invalidation.published,
            "gaps": self.invalidation.gaps,
            "lastError": self.last_error,
        }


def invalidation_child(conninfo: str, invalidation: Invalidation) -> ChildSpec:
    listener = InvalidationListener(conninfo, invalidation)
    return ChildSpec("invalidation", listener.run, critical=False, details=listener.details)
