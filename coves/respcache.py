"""A micro-cache of serialized responses to anonymous read queries.

The same few anonymous reads (a community's hot page, discover, a popular
thread) arrive many times a second; each costs a database round trip and a
JSON encode although the answer changes at most once a second or so (counts
already lag by about that through the post cache). The dispatcher keeps the
encoded body of such a response for a short TTL and sends it to the next
callers as is. Rate limits, request ids, CORS and metrics are applied per
request outside this cache; only the body and the handler's own headers are
shared.

What is stored is decided by the dispatcher: GET/HEAD queries whose endpoint
declares ``cache_seconds`` and whose request carries no viewer, keyed by the
NSID and the canonicalised query string. Errors are never stored.

Single flight: on a miss one request computes while concurrent requests for
the same key wait for it and share its result (an ``XRPCError`` is shared as
a fresh copy; any other failure makes each waiter compute for itself). When
an entry has expired and a refresh is already running, concurrent requests
get the previous copy instead of waiting, provided it expired less than one
TTL ago. Size is bounded by entries and bytes, least recently used first.
Every time reads Trio's clock (``coves.clock``), so tests drive it with
``MockClock``.

Per-viewer entries (getTimeline, post.get) carry the viewer's DID as a tag. The
invalidation channel (``coves.invalidation``: the indexer tells it, after
every batch, the DIDs of the repos it applied records from, in every
process) drops every entry tagged with such a DID (a vote, subscription,
block, post...), and detaches a computation of such an entry that is still
running, so a response read from the database before the commit is neither
stored nor joined by later requests. Without a commit from the viewer's repo,
the entry lags like an anonymous one: by at most its TTL.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

import trio

from coves.clock import monotonic
from coves.errors import XRPCError


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 64


@dataclass(slots=True)
class _Entry:
    value: CachedResponse
    expires: float
    ttl: float
    tag: Hashable | None = None


@dataclass(slots=True)
class _Flight:
    tag: Hashable | None = None
    done: trio.Event = field(default_factory=trio.Event)
    value: CachedResponse | None = None
    error: XRPCError | None = None
    invalidated: bool = False


Compute = Callable[[], Awaitable[CachedResponse]]

# Outcomes reported to the caller (and counted in metrics).
HIT, STALE, SHARED, MISS = "hit", "stale", "shared", "miss"


class ResponseCache:
    def __init__(
        self,
        *,
        max_entries: int = 2048,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # One response may not take more than an eighth of the budget.
        self.max_entry_bytes = max(1, max_bytes // 8)
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._tagged: dict[Hashable, set[Hashable]] = {}  # tag -> keys (entries, flights)
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._tagged.clear()
        for flight in self._flights.values():
            flight.invalidated = True
        self._flights.clear()
        self.bytes = 0

    def invalidate(self, tag: Hashable) -> int:
        """Forget every entry tagged ``tag``; running computations for them are not stored."""
        keys = self._tagged.pop(tag, None)
        if not keys:
            return 0
        for key in keys:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self.bytes -= entry.value.size
            flight = self._flights.pop(key, None)
            if flight is not None:
                flight.invalidated = True
        return len(keys)

    async def get(
        self, key: Hashable, ttl: float, compute: Compute, *, tag: Hashable | None = None
    ) -> tuple[CachedResponse, str]:
        """The response for ``key`` and how it was obtained (hit/stale/shared/miss)."""
        entry = self._entries.get(key)
        if entry is not None:
            now = self._clock()
            if now < entry.expires:
                self._entries.move_to_end(key)
                return entry.value, HIT
            if key in self._flights and now < entry.expires + entry.ttl:
                return entry.value, STALE
        flight = self._flights.get(key)
        if flight is not None:
            await flight.done.wait()
            if flight.value is not None:
                return flight.value, SHARED
            if flight.error is not None:
                err = flight.error
                raise XRPCError(err.status, err.error, err.message, headers=err.headers)
            return await compute(), MISS  # the computation failed: no coordination
        flight = _Flight(tag)
        self._flights[key] = flight
        if tag is not None:
            self._tagged.setdefault(tag, set()).add(key)
        try:
            value = await compute()
            flight.value = value
            if not flight.invalidated:
                self._store(key, value, ttl, tag)
            return value, MISS
        except XRPCError as err:
            flight.error = err
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
                self._untag(key, tag)
            flight.done.set()

    def _store(
        self, key: Hashable, value: CachedResponse, ttl: float, tag: Hashable | None
    ) -> None:
        size = value.size
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old.value.size
        if size > self.max_entry_bytes:
            return
        self._entries[key] = _Entry(value, self._clock() + ttl, ttl, tag)
        self.bytes += size
        if tag is not None:
            self._tagged.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            evicted_key, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.value.size
            self._untag(evicted_key, evicted.tag)

    def _untag(self, key: Hashable, tag: Hashable | None) -> None:
        """Drop ``key`` from ``tag``'s set once neither an entry nor a flight holds it."""
        if tag is None or key in self._entries or key in self._flights:
            return
        keys = self._tagged.get(tag)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._tagged[tag]
