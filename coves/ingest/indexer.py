"""The indexer: the :class:`~coves.ingest.types.Sink` that applies Jetstream batches.

A batch is parsed and validated in Python first, then applied in one
``Database.run`` call (one thread hop, one transaction) together with its
dead letters and the cursor, so a batch commits whole or not at all.
Hooks (identity changes, communities awaiting did:web verification) run
only after the commit, and their failures never undo or fail the batch.
"""

from __future__ import annotations

import inspect
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from coves import clock
from coves.changed import Changed
from coves.db import Database
from coves.db.queries import ingest as q
from coves.ingest.apply import Batch, Decisions, apply_batch
from coves.ingest.events import (
    INDEXED_COLLECTIONS,
    AccountEvent,
    Commit,
    DeadLetter,
    Event,
    IdentityEvent,
    Ignored,
    Reason,
    Skip,
)
from coves.ingest.parse import FrameParser, RecordValidator
from coves.ingest.types import BatchResult, CpuRunner, Frame, SessionLost, in_thread
from coves.logs import get_logger
from coves.metrics import Metrics

log = get_logger(__name__)

KNOWN_USERS_MAX = 200_000
_LOST = ""  # a source whose session was lost: no commit until its cursor is read again

IdentityHook = Callable[[list[str]], Awaitable[None] | None]
VerificationHook = Callable[[str, str], Awaitable[None] | None]
CommitsHook = Callable[[list[Commit]], Awaitable[None] | None]
ChangedHook = Callable[[Changed], Awaitable[None] | None]


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
        on_commits_applied: Sequence[CommitsHook] = (),
        on_changed: Sequence[ChangedHook] = (),
    ) -> None:
        self._db = db
        self._instance_did = instance_did
        self._skip_verification = skip_did_web_verification
        self._parser = FrameParser(validator)
        # DIDs with a users row, learned from committed batches: most events name
        # accounts seen before, and probing users for each cost ~3% of a batch.
        self._known_users: set[str] = set()
        # Source (cursor name) -> its consumer's session token (q.open_session).
        self._sessions: dict[str, str] = {}
        # Public so the identity workstream can register after construction.
        self.on_identity_change: list[IdentityHook] = list(on_identity_change)
        self.on_community_needs_verification = on_community_needs_verification
        # Told which commits were applied (deletes included), e.g. to drop
        # per-viewer response caches of the repos written.
        self.on_commits_applied: list[CommitsHook] = list(on_commits_applied)
        # Told what a committed batch makes stale (coves.changed), after the other
        # hooks (the identity resolver purges its database cache first): the
        # invalidation channel's entry point.
        self.on_changed: list[ChangedHook] = list(on_changed)
        self._events = metrics.counter(
            "coves_ingest_events_total",
            "stream events by kind, collection and outcome",
            ["kind", "collection", "outcome"],
        )
        self._session_losses = metrics.counter(
            "coves_ingest_database_restarts_total",
            "batches refused because the database restarted since the cursor was read",
        )
        self._dead_letters = metrics.counter(
            "coves_ingest_dead_letters_total", "events dead-lettered by reason", ["reason"]
        )

    async def load_cursor(self) -> int | None:
        """The Jetstream cursor; starts a new session (see :meth:`open_source`)."""
        return await self.open_source(q.CURSOR_NAME)

    async def open_source(self, source: str) -> int | None:
        """Read ``source``'s durable cursor and start a session for its consumer.

        A consumer calls this on every (re)connect and resumes from the value
        returned. Batches committed after it refuse to commit (``SessionLost``)
        once the server has restarted, until it is called again: after a crash
        the consumer must come back here instead of trusting its memory.
        """
        token = secrets.token_hex(16)
        cursor = await q.open_session(self._db, token, source)
        self._sessions[source] = token
        # Users learned from batches a crash may have taken back are not known.
        self._known_users.clear()
        return cursor

    async def apply(self, frames: Sequence[Frame]) -> BatchResult:
        """Stage and commit one batch (a caller with nothing to overlap)."""
        return await self.commit(await self.stage(frames, in_thread))

    async def stage(self, frames: Sequence[Frame], cpu: CpuRunner) -> Batch:
        # Parsing a batch is tens of milliseconds of CPU: never on the event loop,
        # so the HTTP server sharing it keeps running.
        now_us = _now_us()
        return await cpu(lambda: self.prepare(frames, now_us=now_us))

    def prepare(self, frames: Sequence[Frame], *, now_us: int | None = None) -> Batch:
        """Parse and validate a batch (pure CPU, no I/O, never raises).

        Split from :meth:`commit` so a caller with a backlog (``coves
        replay``, a consumer catching up) can prepare batch N+1 while batch
        N is in the database; commits must still be awaited in order.
        """
        batch = Batch(frames=len(frames))
        now = _now_us() if now_us is None else now_us
        parse = self._parser.parse
        for frame in frames:
            self._classify(batch, parse(frame.data, now_us=now))
        batch.cursor = batch.newest_us
        return batch

    def prepare_messages(
        self,
        messages: Sequence[tuple[dict[str, Any], str]],
        *,
        frames: int,
        source: str,
        cursor: int | None,
        dead: Sequence[DeadLetter] = (),
        now_us: int | None = None,
    ) -> Batch:
        """Like :meth:`prepare` for events another decoder already turned into
        Jetstream's shape (message, its JSON text): the firehose source, whose
        ``cursor`` is the sequence number of its last frame, not a time."""
        batch = Batch(frames=frames, source=source, dead=list(dead))
        now = _now_us() if now_us is None else now_us
        parse = self._parser.parse_message
        for message, raw in messages:
            self._classify(batch, parse(message, raw, now_us=now))
        batch.cursor = cursor
        return batch

    @staticmethod
    def _classify(batch: Batch, event: Event) -> None:
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
        if time_us is not None and (batch.newest_us is None or time_us > batch.newest_us):
            batch.newest_us = time_us

    async def commit(
        self, batch: Batch, meanwhile: Callable[[], None] | None = None
    ) -> BatchResult:
        """Apply a prepared batch in one transaction (cursor included), then run hooks.

        ``meanwhile`` (see :func:`~coves.ingest.apply.apply_batch`) runs in the
        database thread while the server works through the batch; it may run
        more than once if the batch is bisected, or not at all."""
        if batch.commits or batch.identities or batch.accounts or batch.dead or batch.cursor:
            # Only a batch that moves a stream position must prove the database did not
            # restart since that position was read; a local write (write-then-index, no
            # cursor) is idempotent and the stream delivers it again if a crash loses it.
            if batch.cursor is not None:
                session = self._sessions.get(batch.source)
                if session is None:  # a writer that never read the cursor (coves replay)
                    await self.open_source(batch.source)
                    session = self._sessions[batch.source]
                if session == _LOST:
                    raise SessionLost("the database restarted; read the cursor again")
                batch.session = session
            try:
                decisions = await self._apply(batch, meanwhile)
            except Exception as exc:
                if not q.is_session_lost(exc):
                    raise
                self._sessions[batch.source] = _LOST
                self._known_users.clear()
                log.warning(
                    "ingest batch refused: the database restarted since the cursor was read; "
                    "resuming from the durable cursor",
                    source=batch.source,
                )
                self._session_losses.inc()
                raise SessionLost(str(exc)) from exc
            if len(self._known_users) + len(decisions.users) > KNOWN_USERS_MAX:
                self._known_users.clear()
            self._known_users.update(decisions.users)
        else:
            decisions = Decisions()

        result = self._count(batch.frames, batch, decisions)
        await self._run_hooks(decisions)
        return result

    async def _apply(self, batch: Batch, meanwhile: Callable[[], None] | None = None) -> Decisions:
        """One transaction; if the database refuses the data itself, bisect.

        A constraint or data error would fail the same batch on every retry
        and stall ingestion, so the batch is split until the offending event
        is alone; it is dead-lettered (``apply_failed``) and the rest applies.
        Connectivity errors are not bisected: they raise for the consumer.
        """
        try:
            return await self._db.run(
                lambda conn: apply_batch(
                    conn,
                    batch,
                    instance_did=self._instance_did,
                    skip_did_web_verification=self._skip_verification,
                    known_users=self._known_users,
                    meanwhile=meanwhile,
                ),
                transaction=False,  # apply_batch opens it inside its pipeline
            )
        except Exception as exc:
            if q.is_session_lost(exc) or not q.is_poison(exc) or batch.size == 0:
                raise
            if batch.size > 1:
                log.warning("ingest batch refused by the database; bisecting", size=batch.size)
                first, second = batch.split()
                decisions = await self._apply(first, meanwhile)
                return decisions.merge(await self._apply(second, meanwhile))
            events: list[Commit | IdentityEvent | AccountEvent] = [
                *batch.commits,
                *batch.identities,
                *batch.accounts,
            ]
            letters = [_refused(event, exc) for event in events]
            log.warning("ingest event refused by the database", error=str(exc)[:200])
            rest = batch.like(dead=[*batch.dead, *letters], cursor=batch.cursor)
            decisions = await self._apply(rest, meanwhile)
            decisions.dead.extend(letters)
            return decisions

    def _count(self, frames: int, batch: Batch, decisions: Decisions) -> BatchResult:
        reasons: Counter[str] = Counter()
        events = self._events
        # Tallied first: a labelled increment per event cost ~2 ms a batch in the
        # event loop, between one batch's commit and the next one's start.
        outcomes: Counter[tuple[str, str]] = Counter(
            (commit.collection, "applied") for commit in decisions.applied_commits
        )
        for commit, why in decisions.withheld:
            # Applied, but kept out of views: counted apart so operators see it.
            outcomes[(commit.collection, "applied")] -= 1
            outcomes[(commit.collection, "withheld")] += 1
            reasons[f"withheld_{why}"] += 1
        for commit, why in decisions.skipped_by:
            outcomes[(commit.collection, why)] += 1
            reasons[why] += 1
        for (collection, outcome), count in outcomes.items():
            if count:
                events.labels("commit", collection, outcome).inc(count)
        all_dead = batch.dead + decisions.dead
        for letter in all_dead:
            events.labels(
                _label_kind(letter.kind), _label_collection(letter.collection), "dead_letter"
            ).inc()
            self._dead_letters.labels(letter.reason).inc()
            reasons[letter.reason] += 1
        for item in batch.ignored:
            events.labels(
                _label_kind(item.kind), _label_collection(item.collection), "ignored"
            ).inc()
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
            newest_event_us=newest if newest is not None else batch.newest_us,
            reasons=dict(reasons),
        )

    async def _run_hooks(self, decisions: Decisions) -> None:
        if decisions.applied_commits:
            for commits_hook in self.on_commits_applied:
                await _call(commits_hook, "on_commits_applied", list(decisions.applied_commits))
        changed = decisions.identity_changed
        if changed:
            for hook in self.on_identity_change:
                await _call(hook, "on_identity_change", list(changed))
        if decisions.changed:
            for changed_hook in self.on_changed:
                await _call(changed_hook, "on_changed", decisions.changed)
        if decisions.needs_verification and self.on_community_needs_verification is not None:
            for did, hosted_by in decisions.needs_verification:
                await _call(
                    self.on_community_needs_verification,
                    "on_community_needs_verification",
                    did,
                    hosted_by,
                )


def _now_us() -> int:
    return int(clock.wall_now() * 1_000_000)


_KINDS = frozenset({"commit", "identity", "account"})


def _label_kind(kind: str) -> str:
    """Stream-controlled strings never become label values (unbounded cardinality)."""
    return kind if kind in _KINDS else "other"


def _label_collection(collection: str | None) -> str:
    if not collection:
        return ""
    return collection if collection in INDEXED_COLLECTIONS else "other"


def _refused(event: Commit | IdentityEvent | AccountEvent, exc: BaseException) -> DeadLetter:
    if isinstance(event, Commit):
        kind, collection, rkey = "commit", event.collection, event.rkey
    else:
        kind = "identity" if isinstance(event, IdentityEvent) else "account"
        collection, rkey = None, None
    return DeadLetter(
        Reason.APPLY_FAILED,
        f"database refused: {exc}"[:500],
        event.raw,
        kind=kind,
        did=event.did,
        collection=collection,
        rkey=rkey,
        time_us=event.time_us,
    )


async def _call(hook: Callable[..., Awaitable[None] | None], name: str, *args: object) -> None:
    """Run a post-commit hook; the batch is already durable, so failures are only logged."""
    try:
        result = hook(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("ingest hook failed", hook=name)
