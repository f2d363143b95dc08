"""The did:web verifier child: settles foreign communities' ``hostedBy`` claims.

Work arrives two ways: the indexer offers newly seen foreign communities on
a bounded channel (never blocking it), and a periodic sweep of the
``communities_unverified`` index re-queues anything still waiting, so a
full channel, a restart or a transient failure only delays a verdict.
Every verdict is a security event in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import trio

from coves import clock
from coves.changed import Changed, OnChanged
from coves.db import Database, DatabaseError
from coves.db.queries import verification as q
from coves.identity.hosted_by import HostedByQueue, HostedByVerifier, Verdict
from coves.identity.resolver import IdentityResolver
from coves.logs import get_logger
from coves.metrics import Metrics
from nurseries.supervisor import ChildSpec

log = get_logger(__name__)


class DidWebVerifierChild:
    def __init__(
        self,
        db: Database,
        queue: HostedByQueue,
        verifier: HostedByVerifier,
        instance_did: str,
        *,
        workers: int = 4,
        sweep_interval: float = 60.0,
        sweep_batch: int = 200,
        metrics: Metrics | None = None,
        on_changed: OnChanged | None = None,
    ) -> None:
        self.db = db
        # A verdict changes whether the community exists for readers: every process
        # drops its views of it (coves.invalidation).
        self.on_changed = on_changed
        self.queue = queue
        self.verifier = verifier
        self.instance_did = instance_did
        self.workers = workers
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.counts: dict[str, int] = {"verified": 0, "rejected": 0, "retry": 0, "errors": 0}
        self.last_sweep: float | None = None
        self._verdicts = (
            metrics.counter(
                "coves_hosted_by_verdicts_total", "hostedBy verification verdicts", ["outcome"]
            )
            if metrics is not None
            else None
        )

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers):
                nursery.start_soon(self._worker)
            nursery.start_soon(self._sweep_loop)
            task_status.started(self)

    def details(self) -> dict[str, Any]:
        return {
            "queued": self.queue.depth,
            "dropped_offers": self.queue.dropped,
            "verdict_cache": len(self.verifier.cache),
            **self.counts,
        }

    async def _worker(self) -> None:
        while True:
            community_did, hosted_by = await self.queue.receive.receive()
            try:
                await self.process(community_did, hosted_by)
            finally:
                self.queue.done(community_did)

    async def process(self, community_did: str, hosted_by: str) -> Verdict:
        verdict = await self.verifier.verify(community_did, hosted_by)
        self.counts[verdict.outcome] += 1
        if self._verdicts is not None:
            self._verdicts.labels(verdict.outcome).inc()
        fields = {
            "community": community_did,
            "hosted_by": hosted_by,
            "outcome": verdict.outcome,
            "reason": verdict.reason,
        }
        if verdict.outcome == "retry":
            log.info("security.hosted_by", **fields)  # stays unverified; the sweep retries
            return verdict
        try:
            changed = await q.set_verification(
                self.db,
                community_did,
                hosted_by,
                verdict.outcome,
                reason=verdict.reason,
                at=clock.utcnow(),
            )
        except DatabaseError as exc:
            self.counts["errors"] += 1
            log.warning("hosted_by verdict not stored", community=community_did, error=repr(exc))
            return verdict
        if changed and self.on_changed is not None:
            await self.on_changed(Changed.of(actors=[community_did]))
        if verdict.outcome == "rejected":
            log.warning("security.hosted_by", applied=changed, **fields)
        else:
            log.info("security.hosted_by", applied=changed, **fields)
        return verdict

    async def sweep_once(self) -> int:
        """Queue every foreign community still 'unverified'; waits when the queue is full."""
        queued = 0
        after: tuple[datetime, str] | None = None
        while True:
            page = await q.unverified_communities(
                self.db, self.instance_did, self.sweep_batch, after
            )
            for did, hosted_by, indexed_at in page:
                await self.queue.put(did, hosted_by)
                queued += 1
                after = (indexed_at, did)
            if len(page) < self.sweep_batch:
                self.last_sweep = clock.monotonic()
                return queued

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except DatabaseError as exc:
                log.warning("hosted_by sweep failed; will retry", error=repr(exc))
            await trio.sleep(self.sweep_interval)


def didweb_child(
    db: Database,
    identity: IdentityResolver,
    queue: HostedByQueue,
    *,
    instance_did: str,
    skip_verification: bool,
    metrics: Metrics,
    on_changed: OnChanged | None = None,
) -> ChildSpec:
    """The capability entry for ``nurseries.main.capability_children``."""
    verifier = HostedByVerifier(identity, identity.did_fetcher, skip=skip_verification)
    child = DidWebVerifierChild(
        db, queue, verifier, instance_did, metrics=metrics, on_changed=on_changed
    )
    return ChildSpec("didweb", child.run, critical=False, details=child.details)
