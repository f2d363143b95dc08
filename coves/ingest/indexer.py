"""The indexer: the :class:`~coves.ingest.types.Sink` that applies Jetstream batches.

A batch is parsed and validated in Python first, then applied in one
``Database.run`` call (one thread hop, one transaction) together with its
dead letters and the cursor, so a batch commits whole or not at all.
Hooks (identity changes, communities awaiting did:web verification) run
only after the commit, and their failures never undo or fail the batch.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from coves import clock
from coves.db import Database
from coves.db.queries import ingest as q
from coves.ingest.apply import Batch, Decisions, apply_batch
from coves.ingest.events import AccountEvent, Commit, IdentityEvent, Ignored, Skip
from coves.ingest.parse import FrameParser, RecordValidator
from coves.ingest.types import BatchResult, Frame
from coves.logs import get_logger
from coves.metrics import Metrics

log = get_logger(__name__)

IdentityHook = Callable[[list[str]], Awaitable[None] | None]
VerificationHook = Callable[[str, str], Awaitable[None] | None]


class Indexer:
    def __init__(
        self,
        db: Database,
        *,
        instance_did: str,
        metrics: Metrics,
        validator: RecordValidator | None = None,
        skip_did_web_verification: bool = False,
        on_identity_change: Sequence[IdentityHook] = (),
        on_community_needs_verification: VerificationHook | None = None,
    ) -> None:
        self._db = db
        self._instance_did = instance_did
        self._skip_verification = skip_did_web_verification
        self._parser = FrameParser(validator, now_us=lambda: int(clock.wall_now() * 1_000_000))
        # Public so the identity workstream can register after construction.
        self.on_identity_change: list[IdentityHook] = list(on_identity_change)
        self.on_community_needs_verification = on_community_needs_verification
        self._events = metrics.counter(
            "coves_ingest_events_total",
            "stream events by kind, collection and outcome",
            ["kind", "collection", "outcome"],
        )
        self._dead_letters = metrics.counter(
            "coves_ingest_dead_letters_total", "events dead-lettered by reason", ["reason"]
        )

    async def load_cursor(self) -> int | None:
        return await q.load_cursor(self._db)

    async def apply(self, frames: Sequence[Frame]) -> BatchResult:
        batch = Batch()
        for frame in frames:
            event = self._parser.parse(frame.data)
            if isinstance(event, Commit):
                batch.commits.append(event)
            elif isinstance(event, IdentityEvent):
                batch.identities.append(event)
            elif isinstance(event, AccountEvent):
                batch.accounts.append(event)
            elif isinstance(event, Ignored):
                batch.ignored.append(event)
            else:
                batch.dead.append(event)
            time_us = event.time_us
            if time_us is not None and (batch.cursor is None or time_us > batch.cursor):
                batch.cursor = time_us

        if batch.commits or batch.identities or batch.accounts or batch.dead or batch.cursor:
            decisions = await self._db.run(
                lambda conn: apply_batch(
                    conn,
                    batch,
                    instance_did=self._instance_did,
                    skip_did_web_verification=self._skip_verification,
                )
            )
        else:
            decisions = Decisions()

        result = self._count(len(frames), batch, decisions)
        await self._run_hooks(decisions)
        return result

    def _count(self, frames: int, batch: Batch, decisions: Decisions) -> BatchResult:
        reasons: Counter[str] = Counter()
        events = self._events
        for commit in decisions.applied_commits:
            events.labels("commit", commit.collection, "applied").inc()
        for commit, why in decisions.skipped_by:
            events.labels("commit", commit.collection, why).inc()
            reasons[why] += 1
        all_dead = batch.dead + decisions.dead
        for letter in all_dead:
            events.labels(letter.kind, letter.collection or "", "dead_letter").inc()
            self._dead_letters.labels(letter.reason).inc()
            reasons[letter.reason] += 1
        for item in batch.ignored:
            events.labels(item.kind, item.collection, "ignored").inc()
            reasons[item.reason] += 1
        applied = len(decisions.applied_commits)
        for kind, seen, changed in (
            ("identity", len(batch.identities), len(decisions.identity_changed)),
            ("account", len(batch.accounts), len(decisions.accounts_changed)),
        ):
            applied += changed
            if changed:
                events.labels(kind, "", "applied").inc(changed)
            if seen > changed:
                events.labels(kind, "", Skip.STALE).inc(seen - changed)
                reasons[Skip.STALE] += seen - changed
        dead_count = len(all_dead)
        newest = max((c.time_us for c in batch.commits), default=None)
        return BatchResult(
            events=frames,
            applied=applied,
            skipped=frames - applied - dead_count,
            dead_lettered=dead_count,
            cursor=batch.cursor,
            newest_event_us=newest if newest is not None else batch.cursor,
            reasons=dict(reasons),
        )

    async def _run_hooks(self, decisions: Decisions) -> None:
        if decisions.identity_changed:
            for hook in self.on_identity_change:
                await _call(hook, "on_identity_change", list(decisions.identity_changed))
        if decisions.needs_verification and self.on_community_needs_verification is not None:
            for did, hosted_by in decisions.needs_verification:
                await _call(
                    self.on_community_needs_verification,
                    "on_community_needs_verification",
                    did,
                    hosted_by,
                )


async def _call(hook: Callable[..., Awaitable[None] | None], name: str, *args: object) -> None:
    """Run a post-commit hook; the batch is already durable, so failures are only logged."""
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("ingest hook failed", hook=name)
