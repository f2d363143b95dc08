"""The in-process expiring caches, all on Trio's clock (MockClock-friendly).

Two shapes, one module: :class:`TTLCache` for read-through caches shared by
concurrent requests (one load per key, stale copies while it runs), and
:class:`ExpiringLRU` for bounded lookups whose entries carry their own TTL
(identity successes live a day, failures minutes) and whose size hostile
input must not be able to grow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import trio

from coves.clock import monotonic

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Load(Generic[K, V]):
    """A load under way: its waiters, and the drops that happened meanwhile."""

    __slots__ = ("checks", "done")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.checks: list[Callable[[K, V], bool]] = []


def _always(_key: object, _value: object) -> bool:
    return True


class TTLCache(Generic[K, V]):
    """Entries are fresh for ``ttl`` seconds and kept, stale, until ``stale_ttl``.

    :meth:`get_or_load` is the way to read through it under concurrency: one
    caller loads a missing or expired key while the others get the stale value
    (or, when there is none, wait for that one load instead of each running
    their own). A load that fails is not cached: its waiters each try once
    for themselves. The oldest half is dropped when ``max_entries`` is
    exceeded (insertion order is age order). ``ttl <= 0`` turns the cache
    off: every read loads and nothing is kept (benchmarks measure the
    uncached path that way). ``hits``/``misses`` count reads through
    :meth:`get_or_load` so tests and benchmarks can see the sharing.
    """

    def __init__(self, ttl: float, *, stale_ttl: float | None = None, max_entries: int = 10_000):
        self.ttl = ttl
        self.stale_ttl = max(ttl, stale_ttl if stale_ttl is not None else ttl)
        self._max = max_entries
        self._data: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, _Load[K, V]] = {}
        self.hits = 0
        self.misses = 0

    def _entry(self, key: K, max_age: float) -> tuple[bool, V | None]:
        hit = self._data.get(key)
        if hit is None:
            return False, None
        age = monotonic() - hit[0]
        if age >= self.stale_ttl:
            del self._data[key]
            return False, None
        return age < max_age, hit[1]

    def get(self, key: K) -> V | None:
        fresh, value = self._entry(key, self.ttl)
        return value if fresh else None

    def get_stale(self, key: K) -> V | None:
        """The value even if expired, as long as it is younger than ``stale_ttl``."""
        return self._entry(key, self.stale_ttl)[1]

    def put(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = (monotonic(), value)
        if len(self._data) > self._max:
            for old in list(self._data)[: len(self._data) // 2]:
                del self._data[old]

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """Fresh value, else one shared load (stale value meanwhile); None is not cached."""
        if self.ttl <= 0:
            self.misses += 1
            return await load()
        fresh = self.get(key)
        if fresh is not None:
            self.hits += 1
            return fresh
        loading = self._loading.get(key)
        if loading is not None:
            stale = self.get_stale(key)
            if stale is not None:
                self.hits += 1
                return stale
            await loading.done.wait()
            fresh = self.get(key)
            if fresh is not None:
                self.hits += 1
                return fresh
        self.misses += 1
        mine = _Load[K, V]()
        self._loading[key] = mine
        try:
            value = await load()
            if value is not None and not any(check(key, value) for check in mine.checks):
                self.put(key, value)
            return value
        finally:
            if self._loading.get(key) is mine:
                del self._loading[key]
            mine.done.set()

    def clear(self) -> None:
        """Drop everything, loads under way included (they may have read what changed)."""
        self._data.clear()
        for loading in self._loading.values():
            loading.checks.append(_always)

    def discard(self, predicate: Callable[[K, V], bool]) -> int:
        """Drop the entries ``predicate(key, value)`` matches (a change made them stale);
        how many. A load under way is checked the same way when it ends, and what it
        read is not kept if it matches: it may have read the database before the change
        (its waiters then load for themselves)."""
        stale = [key for key, (_at, value) in self._data.items() if predicate(key, value)]
        for key in stale:
            del self._data[key]
        for loading in self._loading.values():
            loading.checks.append(predicate)
        return len(stale)

    def __len__(self) -> int:
        return len(self._data)


class ExpiringLRU(Generic[K, V]):
    """A bounded LRU whose entries expire after their own TTL.

    Used by identity resolution and the did:web verifier: bounded so many
    distinct DIDs cannot grow memory; per-entry TTLs because a failure must
    be retried sooner than a success.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set(self, key: K, value: V, ttl: float) -> None:
        self._entries[key] = (monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
