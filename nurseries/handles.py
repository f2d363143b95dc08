"""Background identity upkeep: verified handles, cache pruning.

The indexer creates a ``users`` row for every DID it sees and, on an
``#identity`` event, makes the account due for verification instead of
believing the handle the event carries (any PDS can claim any handle). This
child verifies due accounts both ways (DID document claims the handle, the
handle resolves back to the DID) in small batches, paced by a token bucket so
a burst of new DIDs becomes a steady trickle of lookups. A verified handle is
shown; until then the last verified one stays. A failed attempt is retried
after ``first_retry`` seconds, doubling up to ``recheck_after``, so a new
community's handle appears within a minute or so rather than an hour, and
the loop never spins on a broken identity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio

from coves import clock
from coves.changed import Changed, OnChanged
from coves.db import Database, DatabaseError
from coves.db.queries import identity as q
from coves.identity import IdentityError, IdentityResolver
from coves.identity.ratelimit import TokenBucket
from coves.logs import get_logger
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)


class HandleBackfill:
    def __init__(
        self,
        db: Database,
        resolver: IdentityResolver,
        *,
        batch: int = 20,
        concurrency: int = 4,
        rate: float = 5.0,
        idle_interval: float = 30.0,
        recheck_after: float = 3600.0,
        first_retry: float = 30.0,
        prune_interval: float = 3600.0,
        on_changed: OnChanged | None = None,
    ) -> None:
        self.db = db
        self.resolver = resolver
        # A handle shown differently: every process drops its views of the account.
        self.on_changed = on_changed
        self.batch = batch
        self.concurrency = concurrency
        self.bucket = TokenBucket(rate, max(1, int(rate)))
        self.idle_interval = idle_interval
        self.recheck_after = recheck_after
        self.first_retry = first_retry
        self.prune_interval = prune_interval
        self._pruned_at: float | None = None
        self.resolved = 0
        self.unresolved = 0
        self.pruned = 0

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self)
        while True:
            try:
                await self.prune_if_due()
                done = await self.run_batch()
            except DatabaseError as exc:
                log.warning("handle backfill batch failed; will retry", error=repr(exc))
                done = 0
            if done < self.batch:
                await trio.sleep(self.idle_interval)

    def details(self) -> dict[str, Any]:
        return {"resolved": self.resolved, "unresolved": self.unresolved, "pruned": self.pruned}

    async def prune_if_due(self) -> int:
        """Delete expired identity_cache rows (hourly, in bounded chunks)."""
        now = clock.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self.prune_interval:
            return 0
        self._pruned_at = now
        removed = 0
        while True:
            count = await q.delete_expired(self.db, clock.utcnow(), limit=1000)
            removed += count
            if count < 1000:
                break
        self.pruned += removed
        return removed

    async def run_batch(self) -> int:
        """Verify one batch of due accounts; return how many it covered."""
        due = await q.users_due_for_handle(self.db, clock.utcnow(), self.batch)
        limiter = trio.CapacityLimiter(self.concurrency)

        async def one(did: str, attempts: int) -> None:
            async with limiter:
                await self.bucket.acquire()
                await self.resolve_user(did, attempts)

        async with trio.open_nursery() as nursery:
            for row in due:
                nursery.start_soon(one, row["did"], row["handle_attempts"])
        return len(due)

    def retry_delay(self, attempts: int) -> float:
        """Backoff after ``attempts`` failed attempts before this one."""
        return float(min(self.recheck_after, self.first_retry * 2 ** min(attempts, 20)))

    async def resolve_user(self, did: str, attempts: int = 0) -> None:
        now = clock.utcnow()
        retry_at = now + timedelta(seconds=self.retry_delay(attempts))
        try:
            found = await self.resolver.identity(did, force_refresh=attempts > 0)
        except IdentityError as exc:
            log.debug("user identity unresolved", did=did, why=exc.reason)
            self.unresolved += 1
            await q.postpone_handle_check(self.db, did, now, retry_at)
            return
        if found.handle_verified:
            self.resolved += 1
            moved = await q.set_user_identity(self.db, did, found.handle, found.pds_url, now)
        else:
            self.unresolved += 1
            moved = await q.set_user_identity(
                self.db, did, None, found.pds_url, now, retry_at=retry_at
            )
        if moved and self.on_changed is not None:
            await self.on_changed(Changed.of(actors=moved))


def handles_child(
    db: Database, identity: IdentityResolver, *, on_changed: OnChanged | None = None
) -> ChildSpec:
    """The capability entry for ``nurseries.main.capability_children``."""
    backfill = HandleBackfill(db, identity, on_changed=on_changed)
    return ChildSpec("handles", backfill.run, critical=False, details=backfill.details)
