"""One refresh per key at a time, in this process and across processes.

Tokens that rotate on use (an OAuth refresh token, a PDS refresh JWT) must be
renewed by exactly one caller: a second refresh with the same token fails or,
worse, makes the server revoke the whole grant. With API workers and an
ingest process, "one" means one in the deployment. :class:`SingleRefresh`
gives that with two layers:

- **in this process**, a lock per key: concurrent callers queue, and each
  first asks ``done()`` whether the one before it already produced a usable
  result (then it is used, nothing is refreshed again);
- **across processes**, a lease row per key (``refresh_leases``, claimed in
  one statement): the holder refreshes; the others poll ``done()`` until the
  holder's result is stored, or its lease expires (a crashed holder) and one
  of them takes over.

The result must be stored (by ``refresh``) before the lease is released, so
whoever claims next sees it through ``done()``. The lease must outlive a
refresh: ``lease_seconds`` is longer than any refresh's network timeouts.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import trio

from coves import clock
from coves.db import Database
from coves.db.queries import refresh_leases as q
from coves.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

LEASE_SECONDS = 30.0
POLL_SECONDS = 0.25


class RefreshBusy(Exception):
    """Another process held the key's lease for longer than a refresh may take."""

    def __init__(self, scope: str, key: str) -> None:
        super().__init__(f"{scope} {key}: another process is still refreshing it")
        self.scope = scope
        self.key = key


class SingleRefresh:
    """One refresh per key of ``scope`` across every process sharing ``db``."""

    def __init__(
        self,
        db: Database,
        scope: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        max_wait: float | None = None,
    ) -> None:
        self._db = db
        self.scope = scope
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        # How long to wait for another process's refresh before giving up: its
        # lease, and then some (after the lease we take over ourselves).
        self.max_wait = lease_seconds + 5.0 if max_wait is None else max_wait
        self._locks: dict[str, trio.Lock] = {}
        self.claims = 0  # leases this process took (tests and metrics read it)

    async def run(
        self,
        key: str,
        *,
        done: Callable[[], Awaitable[T | None]],
        refresh: Callable[[], Awaitable[T]],
    ) -> T:
        """``done()``'s answer once it has one, else ``refresh()``'s, run by one caller
        in the deployment at a time. ``done`` reads the stored state (it may raise to
        give up, e.g. the session was deleted); ``refresh`` renews and stores."""
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                return await self._across_processes(key, done, refresh)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(key, None)

    async def _across_processes(
        self,
        key: str,
        done: Callable[[], Awaitable[T | None]],
        refresh: Callable[[], Awaitable[T]],
    ) -> T:
        deadline = clock.monotonic() + self.max_wait
        while True:
            result = await done()
            if result is not None:
                return result
            holder = secrets.token_hex(8)
            now = clock.utcnow()
            until = now + timedelta(seconds=self.lease_seconds)
            if await q.claim(self._db, self.scope, key, holder=holder, now=now, until=until):
                self.claims += 1
                try:
                    # Someone may have finished between our look and our claim.
                    result = await done()
                    return result if result is not None else await refresh()
                finally:
                    with trio.CancelScope(shield=True):
                        await self._release(key, holder)
            if clock.monotonic() > deadline:
                raise RefreshBusy(self.scope, key)
            await trio.sleep(self.poll_seconds)  # another process is refreshing it

    async def _release(self, key: str, holder: str) -> None:
        try:
            await q.release(self._db, self.scope, key, holder)
        except Exception as exc:  # the lease expires by itself; the refresh's outcome stands
            log.warning("refresh lease not released", scope=self.scope, error=str(exc))
