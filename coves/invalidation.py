"""Cache invalidation that reaches every process of a deployment: the one way a
cache is dropped when something changes (rather than left to expire).

The caches live in each process: responses cached per viewer, the identity
resolver's memory, and the read path's built views (post views, shared thread
builds, community lookups: coves/read/services.py). With several API
processes, and the indexer in a process of its own, the process that learns
of a change is rarely the one holding the copy. So every change is described
once (:class:`~coves.changed.Changed`, worked out by the indexer for each
batch it applies, Coves' own writes included, and by the few background jobs
that change what views show), applied here at once and published on a
PostgreSQL channel; every other process listening (nurseries/invalidation.py)
applies it when the notification arrives, a few milliseconds later: before
the writer's next request can reach another process, since the write's
response is sent only after the notification is.

Missed notifications: PostgreSQL does not queue them for a listener that is
away, so when a listener (re)connects its process drops everything these
caches hold (:meth:`Invalidation.on_gap`). While it is disconnected a cached
copy can only be as stale as its TTL (``VIEWER_CACHE_SECONDS`` for
responses, ``READ_CACHE_SECONDS`` for built views); the identity memory is
refilled from the database cache, which the indexer purges itself.

Payloads are ``<origin> <kind> <key> <key> ...`` (kinds: coves.changed.KINDS),
split to stay under PostgreSQL's 8000-byte limit; a process ignores its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from coves.changed import Changed
from coves.db import Database, DatabaseError
from coves.db.queries.notify import MAX_PAYLOAD_BYTES, notify
from coves.logs import get_logger
from coves.respcache import ResponseCache

log = get_logger(__name__)

CHANNEL = "coves_invalidate"


class IdentityMemory(Protocol):
    def forget_local(self, did: str) -> None: ...

    def clear_local(self) -> None: ...


class BuiltViews(Protocol):
    """The read path's caches of built views (coves.read.services.ReadServices)."""

    def drop_changed(self, changed: Changed) -> None: ...

    def drop_all(self) -> None: ...


Publisher = Callable[[Sequence[str]], Awaitable[None]]


class Invalidation:
    def __init__(
        self,
        cache: ResponseCache,
        identity: IdentityMemory | None = None,
        publish: Publisher | None = None,
        *,
        views: BuiltViews | None = None,
        origin: str | None = None,
    ) -> None:
        self.cache = cache
        self.identity = identity
        self.views = views
        self.origin = origin or secrets.token_hex(8)
        self._publish = publish
        self.received = 0
        self.published = 0  # notifications this process sent (its own are not received)
        self.gaps = 0

    @classmethod
    def on_database(
        cls,
        db: Database,
        cache: ResponseCache,
        identity: IdentityMemory | None = None,
        *,
        views: BuiltViews | None = None,
        origin: str | None = None,
    ) -> Invalidation:
        async def publish(payloads: Sequence[str]) -> None:
            await notify(db, CHANNEL, payloads)

        return cls(cache, identity, publish, views=views, origin=origin)

    def via(self, db: Database) -> Invalidation:
        """The same caches and origin, publishing through ``db`` (the indexer's own pool,
        so a batch's notifications never queue behind reads)."""
        return Invalidation.on_database(
            db, self.cache, self.identity, views=self.views, origin=self.origin
        )

    # -- changes learnt in this process -------------------------------------------------
    async def changed(self, changed: Changed) -> None:
        """Drop what ``changed`` makes stale, here at once and in every other process.

        Also the indexer's hook (``on_changed``): called after each batch commits."""
        if not changed:
            return
        self._apply(changed)
        if self._publish is None:
            return
        payloads = [
            payload
            for kind, keys in changed.by_kind()
            for payload in chunks(f"{self.origin} {kind}", keys)
        ]
        try:
            await self._publish(payloads)
            self.published += len(payloads)
        except DatabaseError as exc:
            # The change is applied here; elsewhere the TTLs bound the staleness.
            log.warning("invalidation not published", error=repr(exc))

    # -- changes learnt from other processes --------------------------------------------
    def deliver(self, payload: str) -> None:
        """A notification from the channel."""
        origin, _, rest = payload.partition(" ")
        if origin == self.origin:
            return
        kind, _, body = rest.partition(" ")
        try:
            changed = Changed.one(kind, body.split())
        except KeyError:
            log.warning("unknown invalidation kind", kind=kind[:32])
            return
        self.received += 1
        self._apply(changed)

    def on_gap(self) -> None:
        """Notifications may have been missed: drop everything they would have dropped."""
        self.gaps += 1
        self.cache.clear()
        if self.identity is not None:
            self.identity.clear_local()
        if self.views is not None:
            self.views.drop_all()

    # -- internals ----------------------------------------------------------------------
    def _apply(self, changed: Changed) -> None:
        for did in changed.repos:
            self.cache.invalidate(did)
        if self.identity is not None:
            for did in changed.identities:
                self.identity.forget_local(did)
        if self.views is not None and changed.shown:
            self.views.drop_changed(changed)


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
