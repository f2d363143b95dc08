"""Cache invalidation that reaches every process of a deployment.

The caches that are dropped on an event rather than left to expire live in
each process: the per-viewer response cache (dropped when the indexer
applies a record from the viewer's repo, or Coves writes one for them) and
the identity resolver's memory (dropped on ``#identity``). With several API
processes, and the indexer in a process of its own, the process that learns
of the change is rarely the one holding the copy. So a change is applied
here at once and published on a PostgreSQL channel; every other process
listening (nurseries/invalidation.py) applies it when the notification
arrives, a few milliseconds later.

Missed notifications: PostgreSQL does not queue them for a listener that is
away, so when a listener (re)connects its process drops everything these
caches hold (:meth:`Invalidation.on_gap`). While it is disconnected a cached
copy can only be as stale as its TTL (at most ``VIEWER_CACHE_SECONDS`` for
responses); the identity memory is refilled from the database cache, which
the indexer purges itself.

Payloads are ``<origin> <kind> <did> <did> ...`` (kinds: ``repo``,
``identity``), split to stay under PostgreSQL's 8000-byte limit; a process
ignores its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from coves.db import Database, DatabaseError
from coves.db.queries.notify import MAX_PAYLOAD_BYTES, notify
from coves.logs import get_logger
from coves.respcache import ResponseCache

log = get_logger(__name__)

CHANNEL = "coves_invalidate"
REPO, IDENTITY = "repo", "identity"


class IdentityMemory(Protocol):
    def forget_local(self, did: str) -> None: ...

    def clear_local(self) -> None: ...


Publisher = Callable[[Sequence[str]], Awaitable[None]]


class Invalidation:
    def __init__(
        self,
        cache: ResponseCache,
        identity: IdentityMemory | None = None,
        publish: Publisher | None = None,
        *,
        origin: str | None = None,
    ) -> None:
        self.cache = cache
        self.identity = identity
        self.origin = origin or secrets.token_hex(8)
        self._publish = publish
        self.received = 0
        self.gaps = 0

    @classmethod
    def on_database(
        cls,
        db: Database,
        cache: ResponseCache,
        identity: IdentityMemory | None = None,
        *,
        origin: str | None = None,
    ) -> Invalidation:
        async def publish(payloads: Sequence[str]) -> None:
            await notify(db, CHANNEL, payloads)

        return cls(cache, identity, publish, origin=origin)

    def via(self, db: Database) -> Invalidation:
        """The same caches and origin, publishing through ``db`` (the indexer's own pool,
        so a batch's notifications never queue behind reads)."""
        return Invalidation.on_database(db, self.cache, self.identity, origin=self.origin)

    # -- changes learnt in this process -------------------------------------------------
    async def repos_changed(self, dids: Iterable[str]) -> None:
        """Records of these repos were written: drop their cached views everywhere."""
        unique = sorted(set(dids))
        self._apply(REPO, unique)
        await self._broadcast(REPO, unique)

    async def identities_changed(self, dids: Iterable[str]) -> None:
        """Drop every process's in-memory identity of these DIDs (the database cache is
        the caller's, e.g. the resolver's own purge)."""
        unique = sorted(set(dids))
        self._apply(IDENTITY, unique)
        await self._broadcast(IDENTITY, unique)

    # The indexer's post-commit hooks.
    async def on_commits_applied(self, commits: Iterable[Any]) -> None:
        await self.repos_changed(commit.did for commit in commits)

    async def on_identity_change(self, dids: Iterable[str]) -> None:
        await self.identities_changed(dids)

    # -- changes learnt from other processes --------------------------------------------
    def deliver(self, payload: str) -> None:
        """A notification from the channel."""
        origin, _, rest = payload.partition(" ")
        if origin == self.origin:
            return
        kind, _, body = rest.partition(" ")
        if kind not in (REPO, IDENTITY):
            log.warning("unknown invalidation kind", kind=kind[:32])
            return
        self.received += 1
        self._apply(kind, body.split())

    def on_gap(self) -> None:
        """Notifications may have been missed: drop everything they would have dropped."""
        self.gaps += 1
        self.cache.clear()
        if self.identity is not None:
            self.identity.clear_local()

    # -- internals ----------------------------------------------------------------------
    def _apply(self, kind: str, dids: Sequence[str]) -> None:
        if kind == REPO:
            for did in dids:
                self.cache.invalidate(did)
        elif self.identity is not None:
            for did in dids:
                self.identity.forget_local(did)

    async def _broadcast(self, kind: str, dids: Sequence[str]) -> None:
        if self._publish is None or not dids:
            return
        try:
            await self._publish(list(chunks(f"{self.origin} {kind}", dids)))
        except DatabaseError as exc:
            # The change is applied here; elsewhere the TTLs bound the staleness.
            log.warning("invalidation not published", kind=kind, error=repr(exc))


def chunks(prefix: str, items: Sequence[str], limit: int = MAX_PAYLOAD_BYTES) -> Iterable[str]:
    """``prefix item item ...`` payloads, each under ``limit`` bytes."""
    current: list[str] = []
    size = len(prefix.encode())
    for item in items:
        width = len(item.encode()) + 1
        if current and size + width > limit:
            yield " ".join([prefix, *current])
            current, size = [], len(prefix.encode())
        current.append(item)
        size += width
    if current:
        yield " ".join([prefix, *current])
