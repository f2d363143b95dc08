"""Remembering token ids so a captured token or proof cannot be replayed.

An entry lives until the token it describes expires (on Trio's clock), so
the cache only needs to cover each token's own lifetime. It is bounded:
when full, the oldest entries go first; lifetimes are short and bounded, so
insertion order is close to expiry order and the capacity is sized far above
any legitimate request rate.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import trio

from coves import clock

if TYPE_CHECKING:
    from coves.db import Database


class ReplayCache:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen_before(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; True when it was already recorded and live."""
        now = clock.monotonic()
        self._expire(now)
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return True
        self._seen[key] = now + max(ttl, 0.0)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        # Entries are mostly in expiry order; stop at the first live one.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                return
            del self._seen[key]


class ReplayGuard(Protocol):
    async def seen_before(self, key: str, ttl: float) -> bool: ...


class MemoryReplayGuard:
    """One process's memory only: for tools and tests without a database."""

    def __init__(self, cache: ReplayCache | None = None) -> None:
        self._cache = cache if cache is not None else ReplayCache()

    async def seen_before(self, key: str, ttl: float) -> bool:
        return self._cache.seen_before(key, ttl)


@dataclass
class _Batch:
    """Token ids that go to the database in one statement."""

    expiries: dict[bytes, datetime]
    done: trio.Event = field(default_factory=trio.Event)
    fresh: set[bytes] | None = None  # None: the statement failed or was never sent


class SharedReplayGuard:
    """Token ids recorded in PostgreSQL, so a replay is refused after a restart and
    by every other process on the same database; memory in front answers repeats
    within this process without a round trip. Tokens live minutes, so the table
    stays small; expired rows are pruned about once a minute.

    Every signed-in request records its token, which made this a statement (and a
    durable commit) per request. Records made while one is on its way to the
    database are sent together as soon as it lands, in one statement: nothing
    waits longer than it would have, and under load many requests share one round
    trip. Should the request sending a batch fail or be cancelled, the others in
    it record their tokens on their own.
    """

    PRUNE_EVERY = 60.0

    def __init__(self, db: Database, cache: ReplayCache | None = None) -> None:
        self._db = db
        self._cache = cache if cache is not None else ReplayCache()
        self._pruned_at: float | None = None
        self._open: _Batch | None = None  # waiting for the batch in flight to land
        self._in_flight: trio.Event | None = None

    async def seen_before(self, key: str, ttl: float) -> bool:
        from coves.db.queries import replay as replay_sql

        if self._cache.seen_before(key, ttl):
            return True
        now = clock.utcnow()
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        expires = now + timedelta(seconds=max(ttl, 0.0))
        fresh = await self._first_use(digest, expires)
        tick = clock.monotonic()
        if self._pruned_at is None or tick - self._pruned_at >= self.PRUNE_EVERY:
            self._pruned_at = tick
            await replay_sql.prune_expired(self._db, now)
        return not fresh

    async def _first_use(self, digest: bytes, expires: datetime) -> bool:
        from coves.db.queries import replay as replay_sql

        batch = self._open
        if batch is not None:  # join the batch that goes next
            if digest in batch.expiries:
                return False  # the same token twice (memory forgot it): the first wins
            batch.expiries[digest] = expires
            await batch.done.wait()
            if batch.fresh is None:
                return await replay_sql.record_first_use(self._db, digest, expires, clock.utcnow())
            return digest in batch.fresh
        batch = self._open = _Batch({digest: expires})
        try:
            ahead = self._in_flight
            if ahead is not None:
                await ahead.wait()
            self._open = None
            self._in_flight = batch.done
            batch.fresh = await replay_sql.record_first_uses(
                self._db, batch.expiries, clock.utcnow()
            )
        finally:
            if self._open is batch:
                self._open = None
            if self._in_flight is batch.done:
                self._in_flight = None
            batch.done.set()
        return digest in batch.fresh
