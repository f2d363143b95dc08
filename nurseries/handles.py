"""Background identity upkeep: handles for users indexed without one, cache pruning.

The indexer creates a ``users`` row (handle NULL) for every DID it sees;
this child fills in the verified handle and PDS in small batches, paced by
a token bucket so a burst of new DIDs becomes a steady trickle of lookups.
Every attempt stamps ``handle_checked_at``, so failures wait
``recheck_after`` before the next try and the loop can never spin on them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import trio

from coves import clock
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
        prune_interval: float = 3600.0,
    ) -> None:
        self.db = db
        self.resolver = resolver
        self.batch = batch
        self.concurrency = concurrency
        self.bucket = TokenBucket(rate, max(1, int(rate)))
        self.idle_interval = idle_interval
        self.recheck_after = recheck_after
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
        """Resolve one batch; return how many users it covered."""
        cutoff = clock.utcnow() - timedelta(seconds=self.recheck_after)
        dids = await q.users_needing_handle(self.db, cutoff, self.batch)
        limiter = trio.CapacityLimiter(self.concurrency)

        async def one(did: str) -> None:
            async with limiter:
                await self.bucket.acquire()
                await self.resolve_user(did)

        async with trio.open_nursery() as nursery:
            for did in dids:
                nursery.start_soon(one, did)
        return len(dids)

    async def resolve_user(self, did: str) -> None:
        handle: str | None = None
        pds: str | None = None
        try:
            found = await self.resolver.identity(did)
        except IdentityError as exc:
            log.debug("user identity unresolved", did=did, why=exc.reason)
        else:
            pds = found.pds_url
            handle = found.handle if found.handle_verified else None
        if handle is None:
            self.unresolved += 1
        else:
            self.resolved += 1
        await q.set_user_identity(self.db, did, handle, pds, clock.utcnow())


def handles_child(db: Database, identity: IdentityResolver) -> ChildSpec:
    """The capability entry for ``nurseries.main.capability_children``."""
    backfill = HandleBackfill(db, identity)
    return ChildSpec("handles", backfill.run, critical=False, details=backfill.details)
